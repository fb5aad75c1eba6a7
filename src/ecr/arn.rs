//! Amazon Resource Names of ECR resources:
//! `arn:aws:ecr:<region>:<account>:repository/<name>`, and of ECR Public's
//! (global, so without a region): `arn:aws:ecr-public::<account>:repository/<name>`.

use super::error::{EcrError, EcrResult};
use super::names::{AccountId, Region, RepositoryName, Scope};

pub fn repository_arn(scope: &Scope, name: &RepositoryName) -> String {
    repository_arn_of(scope, name.as_str())
}

/// [`repository_arn`] of a name already known to be valid.
pub fn repository_arn_of(scope: &Scope, name: &str) -> String {
    if scope.is_public() {
        format!("arn:aws:ecr-public::{}:repository/{name}", scope.account)
    } else {
        format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            scope.region, scope.account
        )
    }
}

/// The ARN of an account's ECR Public registry.
pub fn public_registry_arn(account: &AccountId) -> String {
    format!("arn:aws:ecr-public::{account}:registry/{account}")
}

/// Splits an ECR Public repository ARN into its registry and name.
pub fn parse_public_repository_arn(arn: &str, param: &str) -> EcrResult<(Scope, RepositoryName)> {
    let invalid = || EcrError::invalid_parameter(param, "must be a valid repository ARN");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    if *prefix != "arn" || !partition.starts_with("aws") || *service != "ecr-public" {
        return Err(invalid());
    }
    // ECR Public is global; its ARNs name no region.
    if !region.is_empty() {
        return Err(invalid());
    }
    let name = resource.strip_prefix("repository/").ok_or_else(invalid)?;
    let account = AccountId::parse(account).map_err(|_| invalid())?;
    let name = RepositoryName::parse(name).map_err(|_| invalid())?;
    Ok((Scope::public(account), name))
}

/// Splits a repository ARN into its registry and repository name.
/// `param` names the request field, for the error message.
pub fn parse_repository_arn(arn: &str, param: &str) -> EcrResult<(Scope, RepositoryName)> {
    let invalid = || EcrError::invalid_parameter(param, "must be a valid repository ARN");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    if *prefix != "arn" || !partition.starts_with("aws") || *service != "ecr" {
        return Err(invalid());
    }
    let name = resource.strip_prefix("repository/").ok_or_else(invalid)?;
    let region = Region::parse(region).map_err(|_| invalid())?;
    let account = AccountId::parse(account).map_err(|_| invalid())?;
    let name = RepositoryName::parse(name).map_err(|_| invalid())?;
    Ok((Scope::new(account, region), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let scope = Scope::new(
            AccountId::parse("123456789012").unwrap(),
            Region::parse("eu-west-1").unwrap(),
        );
        let name = RepositoryName::parse("team/app").unwrap();
        let arn = repository_arn(&scope, &name);
        assert_eq!(
            arn,
            "arn:aws:ecr:eu-west-1:123456789012:repository/team/app"
        );
        assert_eq!(
            parse_repository_arn(&arn, "resourceArn").unwrap(),
            (scope.clone(), name.clone())
        );
        let public = Scope::public(scope.account.clone());
        let arn = repository_arn(&public, &name);
        assert_eq!(arn, "arn:aws:ecr-public::123456789012:repository/team/app");
        assert_eq!(
            parse_public_repository_arn(&arn, "resourceArn").unwrap(),
            (public, name.clone())
        );
        assert!(parse_repository_arn(&arn, "resourceArn").is_err());
        assert!(parse_public_repository_arn(
            "arn:aws:ecr-public:us-east-1:123456789012:repository/x1",
            "resourceArn"
        )
        .is_err());
        for bad in [
            "",
            "arn:aws:s3:eu-west-1:123456789012:repository/x1",
            "arn:aws:ecr:eu-west-1:123456789012:repo/x1",
            "arn:aws:ecr:eu-west-1:12345:repository/x1",
            "arn:aws:ecr:eu-west-1:123456789012:repository/../x",
        ] {
            assert!(parse_repository_arn(bad, "resourceArn").is_err(), "{bad}");
        }
    }
}
