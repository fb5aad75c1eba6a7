// Node's AWS SDK v3 (@aws-sdk/client-ecr) against ecrd.
//
//   ecrd serve &
//   npm ci --prefix examples/node
//   node examples/node/quickstart.mjs        # or ECRD_ENDPOINT=http://host:port
//
// Creates `quickstart/node`, reads it back with its tags, pages through
// DescribeRepositories, gets a registry login, deletes the repository and
// shows the RepositoryNotFoundException a second look answers. Only
// `endpoint` is ecrd-specific.

import {
  ECRClient,
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  GetAuthorizationTokenCommand,
  ListTagsForResourceCommand,
  DeleteRepositoryCommand,
  RepositoryNotFoundException,
  paginateDescribeRepositories,
} from "@aws-sdk/client-ecr";
import assert from "node:assert/strict";

const REPO = "quickstart/node";
const ecr = new ECRClient({
  endpoint: process.env.ECRD_ENDPOINT ?? "http://localhost:4566",
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
});

const created = await ecr.send(new CreateRepositoryCommand({
  repositoryName: REPO,
  imageTagMutability: "IMMUTABLE",
  tags: [{ Key: "env", Value: "dev" }],
}));
console.log("created", created.repository.repositoryUri);

const { repositories } = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [REPO] }));
assert.equal(repositories.length, 1);
assert.equal(repositories[0].imageTagMutability, "IMMUTABLE");
const { tags } = await ecr.send(new ListTagsForResourceCommand({
  resourceArn: repositories[0].repositoryArn,
}));
assert.deepEqual(tags, [{ Key: "env", Value: "dev" }]);
console.log("described", REPO, repositories[0].imageTagMutability, JSON.stringify(tags));

// The paginator follows nextToken; one repository per page here.
const names = [];
for await (const page of paginateDescribeRepositories({ client: ecr, pageSize: 1 }, {})) {
  names.push(...page.repositories.map((r) => r.repositoryName));
}
assert.ok(names.includes(REPO));
console.log("paginated:", names.join(", "));

const { authorizationData } = await ecr.send(new GetAuthorizationTokenCommand({}));
const login = Buffer.from(authorizationData[0].authorizationToken, "base64").toString();
assert.ok(login.startsWith("AWS:"));
console.log("registry login for", authorizationData[0].proxyEndpoint,
  "until", authorizationData[0].expiresAt.toISOString());

await ecr.send(new DeleteRepositoryCommand({ repositoryName: REPO, force: true }));
try {
  await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [REPO] }));
  assert.fail("the deleted repository is still described");
} catch (e) {
  assert.ok(e instanceof RepositoryNotFoundException, String(e));
  console.log("deleted; describing it again:", e.name, "-", e.message);
}
console.log("done");
