//! The domain's error: an ECR error code and ECR's message. Both protocol
//! adapters render it; the control plane as `{"__type", "message"}`, the
//! registry as the closest OCI error code.

use std::fmt;

use crate::store::StoreError;

/// The ECR error codes the domain raises. Each name is an exception shape of
/// the ECR service model (a test checks this against the generated model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidParameter,
    Validation,
    RepositoryNotFound,
    RepositoryAlreadyExists,
    RepositoryNotEmpty,
    InvalidTagParameter,
    TooManyTags,
    LimitExceeded,
    Server,
    ImageNotFound,
    ImageTagAlreadyExists,
    ImageAlreadyExists,
    ImageDigestDoesNotMatch,
    LayersNotFound,
    ReferencedImagesNotFound,
    UploadNotFound,
    InvalidLayerPart,
    LayerPartTooSmall,
    InvalidLayer,
    LayerAlreadyExists,
    EmptyUpload,
    LayerInaccessible,
    UnsupportedImageType,
    ImageArchived,
    ImageStorageClassUpdateNotSupported,
    LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress,
    LifecyclePolicyPreviewNotFound,
    RepositoryPolicyNotFound,
    RegistryPolicyNotFound,
    ScanNotFound,
    /// AWS's generic authorization failure (not an ECR model shape: every
    /// AWS service answers it the same way).
    AccessDenied,
    /// An image that an index of its repository lists may not be deleted.
    /// The model's `ImageFailureCode` (BatchDeleteImage reports it per
    /// image); raised as an error by the registry's single-image delete.
    ImageReferencedByManifestList,
    TemplateAlreadyExists,
    TemplateNotFound,
    PullThroughCacheRuleAlreadyExists,
    PullThroughCacheRuleNotFound,
    UnsupportedUpstreamRegistry,
    SecretNotFound,
    UnableToAccessSecret,
    UnableToDecryptSecretValue,
    UnableToGetUpstreamImage,
    UnableToGetUpstreamLayer,
    ExclusionAlreadyExists,
    ExclusionNotFound,
    SigningConfigurationNotFound,
    /// ECR Public: a `registryId` that is neither an account nor an alias.
    RegistryNotFound,
    /// ECR Public: the operation is not available (ECR Public serves one
    /// region, `us-east-1`).
    UnsupportedCommand,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "InvalidParameterException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::RepositoryNotFound => "RepositoryNotFoundException",
            ErrorKind::RepositoryAlreadyExists => "RepositoryAlreadyExistsException",
            ErrorKind::RepositoryNotEmpty => "RepositoryNotEmptyException",
            ErrorKind::InvalidTagParameter => "InvalidTagParameterException",
            ErrorKind::TooManyTags => "TooManyTagsException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::Server => "ServerException",
            ErrorKind::ImageNotFound => "ImageNotFoundException",
            ErrorKind::ImageTagAlreadyExists => "ImageTagAlreadyExistsException",
            ErrorKind::ImageAlreadyExists => "ImageAlreadyExistsException",
            ErrorKind::ImageDigestDoesNotMatch => "ImageDigestDoesNotMatchException",
            ErrorKind::LayersNotFound => "LayersNotFoundException",
            ErrorKind::ReferencedImagesNotFound => "ReferencedImagesNotFoundException",
            ErrorKind::UploadNotFound => "UploadNotFoundException",
            ErrorKind::InvalidLayerPart => "InvalidLayerPartException",
            ErrorKind::LayerPartTooSmall => "LayerPartTooSmallException",
            ErrorKind::InvalidLayer => "InvalidLayerException",
            ErrorKind::LayerAlreadyExists => "LayerAlreadyExistsException",
            ErrorKind::EmptyUpload => "EmptyUploadException",
            ErrorKind::LayerInaccessible => "LayerInaccessibleException",
            ErrorKind::UnsupportedImageType => "UnsupportedImageTypeException",
            ErrorKind::ImageArchived => "ImageArchivedException",
            ErrorKind::ImageStorageClassUpdateNotSupported => {
                "ImageStorageClassUpdateNotSupportedException"
            }
            ErrorKind::LifecyclePolicyNotFound => "LifecyclePolicyNotFoundException",
            ErrorKind::LifecyclePolicyPreviewInProgress => {
                "LifecyclePolicyPreviewInProgressException"
            }
            ErrorKind::LifecyclePolicyPreviewNotFound => "LifecyclePolicyPreviewNotFoundException",
            ErrorKind::RepositoryPolicyNotFound => "RepositoryPolicyNotFoundException",
            ErrorKind::RegistryPolicyNotFound => "RegistryPolicyNotFoundException",
            ErrorKind::ScanNotFound => "ScanNotFoundException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::ImageReferencedByManifestList => "ImageReferencedByManifestList",
            ErrorKind::TemplateAlreadyExists => "TemplateAlreadyExistsException",
            ErrorKind::TemplateNotFound => "TemplateNotFoundException",
            ErrorKind::PullThroughCacheRuleAlreadyExists => {
                "PullThroughCacheRuleAlreadyExistsException"
            }
            ErrorKind::PullThroughCacheRuleNotFound => "PullThroughCacheRuleNotFoundException",
            ErrorKind::UnsupportedUpstreamRegistry => "UnsupportedUpstreamRegistryException",
            ErrorKind::SecretNotFound => "SecretNotFoundException",
            ErrorKind::UnableToAccessSecret => "UnableToAccessSecretException",
            ErrorKind::UnableToDecryptSecretValue => "UnableToDecryptSecretValueException",
            ErrorKind::UnableToGetUpstreamImage => "UnableToGetUpstreamImageException",
            ErrorKind::UnableToGetUpstreamLayer => "UnableToGetUpstreamLayerException",
            ErrorKind::ExclusionAlreadyExists => "ExclusionAlreadyExistsException",
            ErrorKind::ExclusionNotFound => "ExclusionNotFoundException",
            ErrorKind::SigningConfigurationNotFound => "SigningConfigurationNotFoundException",
            ErrorKind::RegistryNotFound => "RegistryNotFoundException",
            ErrorKind::UnsupportedCommand => "UnsupportedCommandException",
        }
    }

    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::InvalidParameter,
        ErrorKind::Validation,
        ErrorKind::RepositoryNotFound,
        ErrorKind::RepositoryAlreadyExists,
        ErrorKind::RepositoryNotEmpty,
        ErrorKind::InvalidTagParameter,
        ErrorKind::TooManyTags,
        ErrorKind::LimitExceeded,
        ErrorKind::Server,
        ErrorKind::ImageNotFound,
        ErrorKind::ImageTagAlreadyExists,
        ErrorKind::ImageAlreadyExists,
        ErrorKind::ImageDigestDoesNotMatch,
        ErrorKind::LayersNotFound,
        ErrorKind::ReferencedImagesNotFound,
        ErrorKind::UploadNotFound,
        ErrorKind::InvalidLayerPart,
        ErrorKind::LayerPartTooSmall,
        ErrorKind::InvalidLayer,
        ErrorKind::LayerAlreadyExists,
        ErrorKind::EmptyUpload,
        ErrorKind::LayerInaccessible,
        ErrorKind::UnsupportedImageType,
        ErrorKind::ImageArchived,
        ErrorKind::ImageStorageClassUpdateNotSupported,
        ErrorKind::LifecyclePolicyNotFound,
        ErrorKind::LifecyclePolicyPreviewInProgress,
        ErrorKind::LifecyclePolicyPreviewNotFound,
        ErrorKind::RepositoryPolicyNotFound,
        ErrorKind::RegistryPolicyNotFound,
        ErrorKind::ScanNotFound,
        ErrorKind::AccessDenied,
        ErrorKind::ImageReferencedByManifestList,
        ErrorKind::TemplateAlreadyExists,
        ErrorKind::TemplateNotFound,
        ErrorKind::PullThroughCacheRuleAlreadyExists,
        ErrorKind::PullThroughCacheRuleNotFound,
        ErrorKind::UnsupportedUpstreamRegistry,
        ErrorKind::SecretNotFound,
        ErrorKind::UnableToAccessSecret,
        ErrorKind::UnableToDecryptSecretValue,
        ErrorKind::UnableToGetUpstreamImage,
        ErrorKind::UnableToGetUpstreamLayer,
        ErrorKind::ExclusionAlreadyExists,
        ErrorKind::ExclusionNotFound,
        ErrorKind::SigningConfigurationNotFound,
        ErrorKind::RegistryNotFound,
        ErrorKind::UnsupportedCommand,
    ];
}

/// An ECR error with its message, worded as ECR words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrError {
    pub kind: ErrorKind,
    pub message: String,
    /// The exception shape's other members, as the model names them (e.g.
    /// InvalidLayerPartException's `uploadId`); the control plane renders
    /// them beside `message`.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

pub type EcrResult<T> = Result<T, EcrError>;

impl EcrError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EcrError {
            kind,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// ECR's wording for a parameter that breaks a constraint.
    pub fn invalid_parameter(path: &str, constraint: &str) -> Self {
        Self::new(
            ErrorKind::InvalidParameter,
            format!("Invalid parameter at '{path}' failed to satisfy constraint: '{constraint}'"),
        )
    }

    pub fn repository_not_found(name: &str, registry: &str) -> Self {
        Self::new(
            ErrorKind::RepositoryNotFound,
            format!("The repository with name '{name}' does not exist in the registry with id '{registry}'"),
        )
    }
}

impl EcrError {
    /// The same error carrying one more member of its exception shape.
    pub fn with_field(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// ECR's refusal to delete an image that the indexes `parents` list
    /// (BatchDeleteImage's failure reason, word for word).
    pub fn referenced_by_manifest_list(parents: &[crate::digest::Digest]) -> Self {
        let list: Vec<String> = parents.iter().map(ToString::to_string).collect();
        Self::new(
            ErrorKind::ImageReferencedByManifestList,
            format!(
                "Requested image referenced by manifest list: [{}]",
                list.join(", ")
            ),
        )
    }

    pub fn repository_policy_not_found(name: &str, registry: &str) -> Self {
        Self::new(
            ErrorKind::RepositoryPolicyNotFound,
            format!("Repository policy does not exist for the repository with name '{name}' in the registry with id '{registry}'"),
        )
    }

    pub fn registry_policy_not_found(registry: &str) -> Self {
        Self::new(
            ErrorKind::RegistryPolicyNotFound,
            format!("Registry policy does not exist in the registry with id '{registry}'"),
        )
    }
}

impl fmt::Display for EcrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for EcrError {}

impl From<StoreError> for EcrError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        EcrError::new(ErrorKind::Server, e.to_string())
    }
}

impl From<serde_json::Error> for EcrError {
    fn from(e: serde_json::Error) -> Self {
        tracing::error!(error = %e, "stored record does not decode");
        EcrError::new(
            ErrorKind::Server,
            format!("stored record does not decode: {e}"),
        )
    }
}
