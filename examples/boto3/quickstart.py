#!/usr/bin/env python3
"""boto3 against ecrd, start to finish, with nothing but boto3 and the
standard library (no docker, no network):

    ecrd serve &
    python3 examples/boto3/quickstart.py            # or ECRD_ENDPOINT=http://host:port

1. create a repository;
2. push a tiny image through the control plane, as ECR's API allows without
   a registry client: BatchCheckLayerAvailability, InitiateLayerUpload / UploadLayerPart /
   CompleteLayerUpload for the layer and the config, then PutImage with the
   manifest;
3. describe it (DescribeImages, BatchGetImage);
4. put a lifecycle policy that expires images pushed more than 7 days ago;
5. move ecrd's clock 8 days ahead (`POST /_ecrd/clock`, an operator endpoint,
   not ECR), preview the policy (StartLifecyclePolicyPreview /
   GetLifecyclePolicyPreview) and run it (`POST /_ecrd/lifecycle/evaluate`):
   the image expires;
6. put the clock back (offsets add up, so it posts minus the total offset
   that `GET /_ecrd/clock` reports) and delete the repository.

It uses the repository `quickstart/boto3` and deletes it at the end; a run
that stopped halfway leaves it behind (`POST /_ecrd/reset` clears everything).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import urllib.request

import boto3

ENDPOINT = os.environ.get("ECRD_ENDPOINT", "http://localhost:4566")
REPO = "quickstart/boto3"

ecr = boto3.client(
    "ecr",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)


def operator(path: str, body: dict | None = None) -> dict:
    """POST (with a body) or GET one of ecrd's operator endpoints."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{ENDPOINT}{path}", data=data, method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"} if data is not None else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_blob(data: bytes) -> str:
    """One blob through the API's layer upload. Parts other than the last
    must be at least 5 MiB (as in ECR), so a tiny blob is one part."""
    upload_id = ecr.initiate_layer_upload(repositoryName=REPO)["uploadId"]
    out = ecr.upload_layer_part(repositoryName=REPO, uploadId=upload_id,
                                partFirstByte=0, partLastByte=len(data) - 1,
                                layerPartBlob=data)
    assert out["lastByteReceived"] == len(data) - 1, out
    digest = sha256(data)
    done = ecr.complete_layer_upload(repositoryName=REPO, uploadId=upload_id,
                                     layerDigests=[digest])
    assert done["layerDigest"] == digest
    return digest


def tiny_image() -> tuple[bytes, bytes, bytes]:
    """(layer, config, manifest) of a one-file image, built in memory."""
    text = b"hello from the boto3 quick start\n"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(text), 1_700_000_000, 0o644
        tar.addfile(info, io.BytesIO(text))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(raw.getvalue())]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(layer), "size": len(layer)}],
    }).encode()
    return layer, config, manifest


def main() -> None:
    # 1. A repository.
    repo = ecr.create_repository(repositoryName=REPO)["repository"]
    print("created", repo["repositoryUri"])

    # 2. Push through the API: blobs first, then the manifest.
    layer, config, manifest = tiny_image()
    missing = ecr.batch_check_layer_availability(
        repositoryName=REPO, layerDigests=[sha256(layer), sha256(config)])["layers"]
    assert all(l["layerAvailability"] == "UNAVAILABLE" for l in missing), missing
    for blob in (layer, config):
        print("uploaded", upload_blob(blob))
    image = ecr.put_image(repositoryName=REPO, imageTag="v1",
                          imageManifest=manifest.decode(),
                          imageManifestMediaType="application/vnd.oci.image.manifest.v1+json")
    digest = image["image"]["imageId"]["imageDigest"]
    assert digest == sha256(manifest)
    print("pushed", f"{REPO}:v1", digest)

    # 3. Describe it; BatchGetImage returns the very manifest bytes pushed.
    [detail] = ecr.describe_images(repositoryName=REPO)["imageDetails"]
    assert detail["imageDigest"] == digest and detail["imageTags"] == ["v1"]
    print("described", detail["imageTags"], detail["imageSizeInBytes"], "bytes,",
          "pushed at", detail["imagePushedAt"])
    [got] = ecr.batch_get_image(repositoryName=REPO,
                                imageIds=[{"imageTag": "v1"}])["images"]
    assert got["imageManifest"] == manifest.decode()

    # 4. A lifecycle policy: expire anything pushed more than 7 days ago.
    policy = {"rules": [{
        "rulePriority": 1, "description": "expire after a week",
        "selection": {"tagStatus": "any", "countType": "sinceImagePushed",
                      "countUnit": "days", "countNumber": 7},
        "action": {"type": "expire"},
    }]}
    ecr.put_lifecycle_policy(repositoryName=REPO, lifecyclePolicyText=json.dumps(policy))
    preview = preview_policy()
    assert preview == [], preview  # a fresh image is kept
    print("preview today: nothing expires")

    # 5. Eight days later, by ecrd's clock.
    clock = operator("/_ecrd/clock", {"offsetSeconds": 8 * 86400})
    print("clock moved to", clock["now"])
    try:
        preview = preview_policy()
        assert [p["imageDigest"] for p in preview] == [digest], preview
        assert preview[0]["action"]["type"] == "EXPIRE"
        print("preview in 8 days:", preview[0]["imageTags"], "expires by rule",
              preview[0]["appliedRulePriority"])
        run = operator("/_ecrd/lifecycle/evaluate", {"repositoryName": REPO})
        print("lifecycle run:", json.dumps(run))
        left = ecr.describe_images(repositoryName=REPO)["imageDetails"]
        assert left == [], left
        print("the image expired; the repository is empty")
    finally:
        # 6. Back to real time. offsetSeconds moves the clock relative to
        # where it stands (it adds up), so undo the total offset.
        offset = operator("/_ecrd/clock")["offsetSeconds"]
        operator("/_ecrd/clock", {"offsetSeconds": -offset})
        assert operator("/_ecrd/clock")["offsetSeconds"] == 0
        ecr.delete_repository(repositoryName=REPO, force=True)
    print("clock reset, repository deleted: done")


def preview_policy() -> list[dict]:
    """Start a preview and wait for it to complete; its results."""
    ecr.start_lifecycle_policy_preview(repositoryName=REPO)
    deadline = time.monotonic() + 30
    while True:
        out = ecr.get_lifecycle_policy_preview(repositoryName=REPO)
        if out["status"] == "COMPLETE":
            return out["previewResults"]
        assert out["status"] == "IN_PROGRESS", out
        assert time.monotonic() < deadline, "the preview did not complete in 30 s"
        time.sleep(0.1)


if __name__ == "__main__":
    main()
