//! ECR Public's operation handlers. Each maps the wire shapes to a domain
//! call (or to ECR's handler of the same operation, [`via_ecr`]) and back.

use std::future::Future;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::model::{
    AuthorizationData, BatchCheckLayerAvailabilityRequest, BatchCheckLayerAvailabilityResponse,
    BatchDeleteImageRequest, BatchDeleteImageResponse, CompleteLayerUploadRequest,
    CompleteLayerUploadResponse, CreateRepositoryRequest, CreateRepositoryResponse,
    DeleteRepositoryPolicyRequest, DeleteRepositoryPolicyResponse, DeleteRepositoryRequest,
    DeleteRepositoryResponse, DescribeImageTagsRequest, DescribeImageTagsResponse,
    DescribeImagesRequest, DescribeImagesResponse, DescribeRegistriesRequest,
    DescribeRegistriesResponse, DescribeRepositoriesRequest, DescribeRepositoriesResponse,
    GetAuthorizationTokenRequest, GetAuthorizationTokenResponse, GetRegistryCatalogDataRequest,
    GetRegistryCatalogDataResponse, GetRepositoryCatalogDataRequest,
    GetRepositoryCatalogDataResponse, GetRepositoryPolicyRequest, GetRepositoryPolicyResponse,
    ImageTagDetail, InitiateLayerUploadRequest, InitiateLayerUploadResponse,
    ListTagsForResourceRequest, ListTagsForResourceResponse, PutImageRequest, PutImageResponse,
    PutRegistryCatalogDataRequest, PutRegistryCatalogDataResponse, PutRepositoryCatalogDataRequest,
    PutRepositoryCatalogDataResponse, ReferencedImageDetail, Registry, RegistryAlias,
    RegistryCatalogData, Repository, RepositoryCatalogData, RepositoryCatalogDataInput,
    SetRepositoryPolicyRequest, SetRepositoryPolicyResponse, TagResourceRequest,
    TagResourceResponse, Timestamp, UntagResourceRequest, UntagResourceResponse,
    UploadLayerPartRequest, UploadLayerPartResponse,
};
use crate::api::ops as ecr_ops;
use crate::api::Ctx;
use crate::auth::token::authorization_token;
use crate::ecr::arn::{public_registry_arn, repository_arn};
use crate::ecr::clock::epoch_seconds;
use crate::ecr::error::{EcrError, EcrResult, ErrorKind};
use crate::ecr::images::Reference;
use crate::ecr::names::{AccountId, RepositoryName, Scope};
use crate::ecr::public::{default_alias, CatalogInput, CatalogRecord};
use crate::ecr::records::RepositoryRecord;
use crate::ecr::repositories::{parse_name, NewRepository};

/// DescribeImageTags' page size when `maxResults` is not given.
const DEFAULT_TAG_PAGE: usize = 100;

/// Re-reads one wire shape as another with the same member names: ECR
/// Public's shapes are subsets of ECR's, so a member the other side does
/// not model is dropped, and none is invented.
fn convert<A: Serialize, B: DeserializeOwned>(value: &A) -> EcrResult<B> {
    Ok(serde_json::from_value(serde_json::to_value(value)?)?)
}

/// Runs ECR's handler of the same operation on the public registry: the
/// input re-read as ECR's shape (a `registryId` that is an alias becomes
/// its account), ECR's output re-read as ECR Public's.
async fn via_ecr<PI, EI, EO, PO, F, Fut>(ctx: Ctx, input: PI, handler: F) -> EcrResult<PO>
where
    PI: Serialize,
    EI: DeserializeOwned,
    EO: Serialize,
    PO: DeserializeOwned,
    F: FnOnce(Ctx, EI) -> Fut,
    Fut: Future<Output = EcrResult<EO>>,
{
    let mut value = serde_json::to_value(&input)?;
    if let Some(id) = value.get("registryId").and_then(|v| v.as_str()) {
        let account = ctx.app.ecr.public_registry_named(id)?;
        value["registryId"] = serde_json::Value::String(account.to_string());
    }
    let ecr_input: EI = serde_json::from_value(value)?;
    let output = handler(ctx, ecr_input).await?;
    convert(&output)
}

/// A public registry's URI: `<public host>/<alias>`.
fn registry_uri(ctx: &Ctx, account: &AccountId) -> EcrResult<String> {
    let registry = ctx.app.ecr.public_registry(account)?;
    Ok(format!("{}/{}", ctx.app.ecr.public_host(), registry.alias))
}

/// The wire form of a public repository.
fn repository_shape(ctx: &Ctx, scope: &Scope, record: &RepositoryRecord) -> EcrResult<Repository> {
    let name = RepositoryName::parse(&record.name).ok();
    Ok(Repository {
        repository_arn: name.as_ref().map(|n| repository_arn(scope, n)),
        registry_id: Some(scope.account.to_string()),
        repository_name: Some(record.name.clone()),
        repository_uri: Some(format!(
            "{}/{}",
            registry_uri(ctx, &scope.account)?,
            record.name
        )),
        created_at: Some(Timestamp(record.created_at_ms as f64 / 1000.0)),
    })
}

/// Rewrites the URIs ECR's handler gave (private-registry ones).
fn fix_repository(ctx: &Ctx, repository: &mut Repository) -> EcrResult<()> {
    if let (Some(account), Some(name)) = (&repository.registry_id, &repository.repository_name) {
        if let Ok(account) = AccountId::parse(account) {
            repository.repository_uri = Some(format!("{}/{name}", registry_uri(ctx, &account)?));
        }
    }
    Ok(())
}

fn catalog_input(input: RepositoryCatalogDataInput) -> CatalogInput {
    CatalogInput {
        description: input.description,
        architectures: input.architectures,
        operating_systems: input.operating_systems,
        about_text: input.about_text,
        usage_text: input.usage_text,
        logo: input.logo_image_blob.map(|b| b.0),
    }
}

/// The catalog data's wire form; the logo is served by ecrd
/// (`/_ecrd/public/logos/...`) where ECR Public serves it from a CDN.
fn catalog_shape(
    ctx: &Ctx,
    scope: &Scope,
    name: &RepositoryName,
    record: CatalogRecord,
) -> RepositoryCatalogData {
    let logo_url = record.logo_version().map(|version| {
        format!(
            "{}/_ecrd/public/logos/{}/{name}?v={version}",
            ctx.app
                .ecr
                .fetch_base_url(&ctx.caller.scope(), ctx.caller.secure_transport),
            scope.account
        )
    });
    RepositoryCatalogData {
        description: record.description,
        architectures: record.architectures,
        operating_systems: record.operating_systems,
        logo_url,
        about_text: record.about_text,
        usage_text: record.usage_text,
        marketplace_certified: None,
    }
}

pub async fn create_repository(
    ctx: Ctx,
    input: CreateRepositoryRequest,
) -> EcrResult<CreateRepositoryResponse> {
    let scope = ctx.repository(None, input.repository_name.as_deref())?;
    let name = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    // The registry (and its alias) exists from the first repository on.
    ctx.app.ecr.public_registry(&scope.account)?;
    let record = ctx.app.ecr.create_repository(
        &scope,
        NewRepository {
            name: name.as_str().to_string(),
            tags: ecr_ops::repositories::tag_records(convert(&input.tags)?),
            ..Default::default()
        },
    )?;
    let catalog = match input.catalog_data {
        Some(data) => ctx
            .app
            .ecr
            .put_repository_catalog(&scope, &name, catalog_input(data))?,
        None => CatalogRecord::default(),
    };
    Ok(CreateRepositoryResponse {
        repository: Some(repository_shape(&ctx, &scope, &record)?),
        catalog_data: Some(catalog_shape(&ctx, &scope, &name, catalog)),
    })
}

pub async fn describe_repositories(
    ctx: Ctx,
    input: DescribeRepositoriesRequest,
) -> EcrResult<DescribeRepositoriesResponse> {
    let fixer = ctx.clone();
    let mut output: DescribeRepositoriesResponse =
        via_ecr(ctx, input, ecr_ops::repositories::describe_repositories).await?;
    for repository in output.repositories.iter_mut().flatten() {
        fix_repository(&fixer, repository)?;
    }
    Ok(output)
}

pub async fn delete_repository(
    ctx: Ctx,
    input: DeleteRepositoryRequest,
) -> EcrResult<DeleteRepositoryResponse> {
    let fixer = ctx.clone();
    let mut output: DeleteRepositoryResponse =
        via_ecr(ctx, input, ecr_ops::repositories::delete_repository).await?;
    if let Some(repository) = output.repository.as_mut() {
        fix_repository(&fixer, repository)?;
    }
    Ok(output)
}

/// DescribeRegistries: the caller's own public registry (one per account).
pub async fn describe_registries(
    ctx: Ctx,
    input: DescribeRegistriesRequest,
) -> EcrResult<DescribeRegistriesResponse> {
    let scope = ctx.registry(None)?;
    if input.next_token.is_some() {
        // One registry fits every page: no call ever returns a token.
        return Err(EcrError::invalid_parameter(
            "nextToken",
            "must be a nextToken returned by an earlier call",
        ));
    }
    let registry = ctx.app.ecr.public_registry(&scope.account)?;
    Ok(DescribeRegistriesResponse {
        registries: Some(vec![Registry {
            registry_id: Some(scope.account.to_string()),
            registry_arn: Some(public_registry_arn(&scope.account)),
            registry_uri: Some(format!("{}/{}", ctx.app.ecr.public_host(), registry.alias)),
            verified: Some(false),
            aliases: Some(vec![RegistryAlias {
                default_registry_alias: Some(registry.alias == default_alias(&scope.account)),
                name: Some(registry.alias),
                status: Some("ACTIVE".to_string()),
                primary_registry_alias: Some(true),
            }]),
        }]),
        next_token: None,
    })
}

pub async fn get_registry_catalog_data(
    ctx: Ctx,
    _input: GetRegistryCatalogDataRequest,
) -> EcrResult<GetRegistryCatalogDataResponse> {
    let scope = ctx.registry(None)?;
    let registry = ctx.app.ecr.public_registry(&scope.account)?;
    Ok(GetRegistryCatalogDataResponse {
        registry_catalog_data: Some(RegistryCatalogData {
            display_name: registry.display_name,
        }),
    })
}

pub async fn put_registry_catalog_data(
    ctx: Ctx,
    input: PutRegistryCatalogDataRequest,
) -> EcrResult<PutRegistryCatalogDataResponse> {
    let scope = ctx.registry(None)?;
    let registry = ctx
        .app
        .ecr
        .put_registry_catalog_data(&scope.account, input.display_name)?;
    Ok(PutRegistryCatalogDataResponse {
        registry_catalog_data: Some(RegistryCatalogData {
            display_name: registry.display_name,
        }),
    })
}

pub async fn get_repository_catalog_data(
    ctx: Ctx,
    input: GetRepositoryCatalogDataRequest,
) -> EcrResult<GetRepositoryCatalogDataResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let name = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let record = ctx.app.ecr.repository_catalog(&scope, &name)?;
    Ok(GetRepositoryCatalogDataResponse {
        catalog_data: Some(catalog_shape(&ctx, &scope, &name, record)),
    })
}

pub async fn put_repository_catalog_data(
    ctx: Ctx,
    input: PutRepositoryCatalogDataRequest,
) -> EcrResult<PutRepositoryCatalogDataResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let name = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let data = input.catalog_data.unwrap_or_default();
    let record = ctx
        .app
        .ecr
        .put_repository_catalog(&scope, &name, catalog_input(data))?;
    Ok(PutRepositoryCatalogDataResponse {
        catalog_data: Some(catalog_shape(&ctx, &scope, &name, record)),
    })
}

fn encode_tag_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("image-tags:{last}"))
}

fn decode_tag_token(token: &str) -> EcrResult<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("image-tags:").map(str::to_string))
        .ok_or_else(|| {
            EcrError::invalid_parameter(
                "nextToken",
                "must be a nextToken returned by an earlier call",
            )
        })
}

/// DescribeImageTags: a page of the repository's tags in name order, each
/// with the image it points at. A tag's `createdAt` is when its image was
/// pushed (ecrd keeps no separate time per tag).
pub async fn describe_image_tags(
    ctx: Ctx,
    input: DescribeImageTagsRequest,
) -> EcrResult<DescribeImageTagsResponse> {
    let scope = ctx.repository(input.registry_id.as_ref(), input.repository_name.as_deref())?;
    let name = parse_name(input.repository_name.as_deref().unwrap_or_default())?;
    let limit = input
        .max_results
        .map_or(DEFAULT_TAG_PAGE, |m| m.max(1) as usize);
    let after = input
        .next_token
        .as_deref()
        .map(decode_tag_token)
        .transpose()?;
    let (tags, more) = ctx
        .app
        .ecr
        .list_tags(&scope, &name, after.as_deref(), limit)?;
    let mut details = Vec::with_capacity(tags.len());
    for tag in &tags {
        let image = match ctx
            .app
            .ecr
            .get_image(&scope, &name, &Reference::Tag(tag.clone()), None)
        {
            Ok(image) => image,
            // Untagged between the two reads: not a tag any more.
            Err(e) if e.kind == ErrorKind::ImageNotFound => continue,
            Err(e) => return Err(e),
        };
        let pushed = Timestamp(image.pushed_at_ms as f64 / 1000.0);
        details.push(ImageTagDetail {
            image_tag: Some(tag.clone()),
            created_at: Some(pushed),
            image_detail: Some(ReferencedImageDetail {
                image_digest: Some(image.digest.to_string()),
                image_size_in_bytes: Some(image.size_in_bytes),
                image_pushed_at: Some(pushed),
                image_manifest_media_type: Some(image.media_type.clone()),
                artifact_media_type: image.artifact_type.clone(),
            }),
        });
    }
    Ok(DescribeImageTagsResponse {
        image_tag_details: Some(details),
        next_token: match tags.last() {
            Some(last) if more => Some(encode_tag_token(last)),
            _ => None,
        },
    })
}

/// GetAuthorizationToken: the password `docker login` takes for the
/// public registry (user `AWS`), 12 hours as in ECR Public. It opens the
/// public registry only; ECR's passwords open the private ones only.
pub async fn get_authorization_token(
    ctx: Ctx,
    _input: GetAuthorizationTokenRequest,
) -> EcrResult<GetAuthorizationTokenResponse> {
    let scope = ctx.registry(None)?;
    ctx.app.ecr.public_registry(&scope.account)?;
    let (password, expires_at) = ctx.app.tokens.issue_to(
        &scope,
        &ctx.caller.access_key_id,
        Some(&ctx.caller.principal_arn),
        ctx.app.ecr.clock.now(),
    );
    Ok(GetAuthorizationTokenResponse {
        authorization_data: Some(AuthorizationData {
            authorization_token: Some(authorization_token(&password)),
            expires_at: Some(Timestamp(epoch_seconds(expires_at))),
        }),
    })
}

pub async fn describe_images(
    ctx: Ctx,
    input: DescribeImagesRequest,
) -> EcrResult<DescribeImagesResponse> {
    via_ecr(ctx, input, ecr_ops::images::describe_images).await
}

pub async fn batch_delete_image(
    ctx: Ctx,
    input: BatchDeleteImageRequest,
) -> EcrResult<BatchDeleteImageResponse> {
    via_ecr(ctx, input, ecr_ops::images::batch_delete_image).await
}

pub async fn put_image(ctx: Ctx, input: PutImageRequest) -> EcrResult<PutImageResponse> {
    via_ecr(ctx, input, ecr_ops::images::put_image).await
}

pub async fn batch_check_layer_availability(
    ctx: Ctx,
    input: BatchCheckLayerAvailabilityRequest,
) -> EcrResult<BatchCheckLayerAvailabilityResponse> {
    via_ecr(ctx, input, ecr_ops::layers::batch_check_layer_availability).await
}

pub async fn initiate_layer_upload(
    ctx: Ctx,
    input: InitiateLayerUploadRequest,
) -> EcrResult<InitiateLayerUploadResponse> {
    via_ecr(ctx, input, ecr_ops::layers::initiate_layer_upload).await
}

pub async fn upload_layer_part(
    ctx: Ctx,
    input: UploadLayerPartRequest,
) -> EcrResult<UploadLayerPartResponse> {
    via_ecr(ctx, input, ecr_ops::layers::upload_layer_part).await
}

pub async fn complete_layer_upload(
    ctx: Ctx,
    input: CompleteLayerUploadRequest,
) -> EcrResult<CompleteLayerUploadResponse> {
    via_ecr(ctx, input, ecr_ops::layers::complete_layer_upload).await
}

pub async fn set_repository_policy(
    ctx: Ctx,
    input: SetRepositoryPolicyRequest,
) -> EcrResult<SetRepositoryPolicyResponse> {
    via_ecr(ctx, input, ecr_ops::policies::set_repository_policy).await
}

pub async fn get_repository_policy(
    ctx: Ctx,
    input: GetRepositoryPolicyRequest,
) -> EcrResult<GetRepositoryPolicyResponse> {
    via_ecr(ctx, input, ecr_ops::policies::get_repository_policy).await
}

pub async fn delete_repository_policy(
    ctx: Ctx,
    input: DeleteRepositoryPolicyRequest,
) -> EcrResult<DeleteRepositoryPolicyResponse> {
    via_ecr(ctx, input, ecr_ops::policies::delete_repository_policy).await
}

pub async fn tag_resource(ctx: Ctx, input: TagResourceRequest) -> EcrResult<TagResourceResponse> {
    via_ecr(ctx, input, ecr_ops::repositories::tag_resource).await
}

pub async fn untag_resource(
    ctx: Ctx,
    input: UntagResourceRequest,
) -> EcrResult<UntagResourceResponse> {
    via_ecr(ctx, input, ecr_ops::repositories::untag_resource).await
}

pub async fn list_tags_for_resource(
    ctx: Ctx,
    input: ListTagsForResourceRequest,
) -> EcrResult<ListTagsForResourceResponse> {
    via_ecr(ctx, input, ecr_ops::repositories::list_tags_for_resource).await
}
