//! The catalogues of `ecr:` and `ecr-public:` action names a policy may name.
//!
//! Source: the Service Authorization Reference, "Actions, resources, and
//! condition keys for Amazon Elastic Container Registry" — every operation
//! of the ECR API (as botocore's `ecr/2015-09-21` model lists them) plus
//! the permission-only actions that have no API operation of their own:
//! `BatchImportUpstreamImage` (pull through cache), `GetImageCopyStatus`
//! (pull through cache from another ECR registry) and `ReplicateImage`
//! (cross-account replication, granted by a registry policy).

/// Action names without the `ecr:` prefix, sorted.
pub const ALL: &[&str] = &[
    "BatchCheckLayerAvailability",
    "BatchDeleteImage",
    "BatchGetImage",
    "BatchGetRepositoryScanningConfiguration",
    "BatchImportUpstreamImage",
    "CompleteLayerUpload",
    "CreatePullThroughCacheRule",
    "CreateRepository",
    "CreateRepositoryCreationTemplate",
    "DeleteLifecyclePolicy",
    "DeletePullThroughCacheRule",
    "DeleteRegistryPolicy",
    "DeleteRepository",
    "DeleteRepositoryCreationTemplate",
    "DeleteRepositoryPolicy",
    "DeleteSigningConfiguration",
    "DeregisterPullTimeUpdateExclusion",
    "DescribeImageReplicationStatus",
    "DescribeImageScanFindings",
    "DescribeImageSigningStatus",
    "DescribeImages",
    "DescribePullThroughCacheRules",
    "DescribeRegistry",
    "DescribeRepositories",
    "DescribeRepositoryCreationTemplates",
    "GetAccountSetting",
    "GetAuthorizationToken",
    "GetDownloadUrlForLayer",
    "GetImageCopyStatus",
    "GetLifecyclePolicy",
    "GetLifecyclePolicyPreview",
    "GetRegistryPolicy",
    "GetRegistryScanningConfiguration",
    "GetRepositoryPolicy",
    "GetSigningConfiguration",
    "InitiateLayerUpload",
    "ListImageReferrers",
    "ListImages",
    "ListPullTimeUpdateExclusions",
    "ListTagsForResource",
    "PutAccountSetting",
    "PutImage",
    "PutImageScanningConfiguration",
    "PutImageTagMutability",
    "PutLifecyclePolicy",
    "PutRegistryPolicy",
    "PutRegistryScanningConfiguration",
    "PutReplicationConfiguration",
    "PutSigningConfiguration",
    "RegisterPullTimeUpdateExclusion",
    "ReplicateImage",
    "SetRepositoryPolicy",
    "StartImageScan",
    "StartLifecyclePolicyPreview",
    "TagResource",
    "UntagResource",
    "UpdateImageStorageClass",
    "UpdatePullThroughCacheRule",
    "UpdateRepositoryCreationTemplate",
    "UploadLayerPart",
    "ValidatePullThroughCacheRule",
];

/// The catalogue's spelling of an action, looked up ignoring case (IAM
/// action names are case-insensitive), with or without the `ecr:` prefix.
pub fn canonical(name: &str) -> Option<&'static str> {
    let bare = match name.split_once(':') {
        Some((service, rest)) if service.eq_ignore_ascii_case("ecr") => rest,
        Some(_) => return None,
        None => name,
    };
    ALL.iter().copied().find(|a| a.eq_ignore_ascii_case(bare))
}

/// ECR Public's action names without the `ecr-public:` prefix, sorted:
/// the operations of botocore's `ecr-public/2020-10-30` model (the Service
/// Authorization Reference lists the same, plus `BatchCheckLayerAvailability`'s
/// siblings that every push needs).
pub const PUBLIC: &[&str] = &[
    "BatchCheckLayerAvailability",
    "BatchDeleteImage",
    "CompleteLayerUpload",
    "CreateRepository",
    "DeleteRepository",
    "DeleteRepositoryPolicy",
    "DescribeImageTags",
    "DescribeImages",
    "DescribeRegistries",
    "DescribeRepositories",
    "GetAuthorizationToken",
    "GetRegistryCatalogData",
    "GetRepositoryCatalogData",
    "GetRepositoryPolicy",
    "InitiateLayerUpload",
    "ListTagsForResource",
    "PutImage",
    "PutRegistryCatalogData",
    "PutRepositoryCatalogData",
    "SetRepositoryPolicy",
    "TagResource",
    "UntagResource",
    "UploadLayerPart",
];

/// [`canonical`] for `ecr-public:` actions.
pub fn canonical_public(name: &str) -> Option<&'static str> {
    let bare = match name.split_once(':') {
        Some((service, rest)) if service.eq_ignore_ascii_case("ecr-public") => rest,
        Some(_) => return None,
        None => name,
    };
    PUBLIC
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(bare))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_catalogue_is_the_public_model() {
        assert!(PUBLIC.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        let model: Vec<&str> = crate::public_api::model::Operation::ALL
            .iter()
            .map(|o| o.name())
            .collect();
        assert_eq!(PUBLIC, model.as_slice());
        assert_eq!(canonical_public("ecr-public:putimage"), Some("PutImage"));
        assert_eq!(canonical_public("ecr:PutImage"), None);
    }

    #[test]
    fn catalogue_is_sorted_unique_and_complete() {
        assert!(ALL.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        // 58 API operations and 3 permission-only actions.
        assert_eq!(ALL.len(), 61);
        for permission_only in [
            "BatchImportUpstreamImage",
            "GetImageCopyStatus",
            "ReplicateImage",
        ] {
            assert!(ALL.contains(&permission_only));
        }
    }

    #[test]
    fn canonical_lookup() {
        let cases: &[(&str, Option<&str>)] = &[
            ("DescribeImages", Some("DescribeImages")),
            ("ecr:DescribeImages", Some("DescribeImages")),
            ("ECR:describeimages", Some("DescribeImages")),
            ("ecr:replicateimage", Some("ReplicateImage")),
            ("ecr:DescribeImage", None),
            ("s3:GetObject", None),
            ("ecr-public:DescribeImages", None),
            ("", None),
            ("ecr:", None),
        ];
        for &(name, expected) in cases {
            assert_eq!(canonical(name), expected, "{name}");
        }
    }
}
