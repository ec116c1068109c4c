"""Gaps of moto 5.2.5 that make the real hashicorp/aws provider see changes that never happened.

tests/tools/install-moto.sh copies this file into the moto venv and writes a
`tollgate-moto-server` that imports it before starting moto's server; every test that starts
moto (TOLLGATE_MOTO_SERVER) runs the patched one. Each patch adds what AWS does and moto
drops; none changes an answer moto already gets right. Remove a patch when moto gains the
behaviour (docs/aws-modules.md lists them).
"""

from collections.abc import Iterable
from typing import Any

import xmltodict
from moto.cloudfront.models import DefaultCacheBehaviour, Origin, ViewerCertificate
from moto.ec2.models.security_groups import SecurityGroupRule
from moto.ecs.responses import EC2ContainerServiceResponse as EcsResponse
from moto.rds.models import DBParameterGroup
from moto.s3.responses import S3Response


def _create_bucket_tags(body: bytes) -> dict[str, str]:
    """The tags of a CreateBucket request body (`CreateBucketConfiguration.Tags`)."""
    try:
        configuration = xmltodict.parse(body).get("CreateBucketConfiguration") or {}
    except Exception:  # noqa: BLE001 - not XML: moto already answered the request
        return {}
    tags = (configuration.get("Tags") or {}).get("Tag") or []
    if isinstance(tags, dict):
        tags = [tags]
    return {tag["Key"]: tag.get("Value") or "" for tag in tags}


_bucket_response_put = S3Response._bucket_response_put


def _bucket_response_put_with_tags(self: S3Response, request: Any, bucket_name: str, querystring: dict[str, Any]) -> Any:
    # Provider 6.x tags a new bucket in CreateBucket itself; moto 5.2.5 creates the bucket
    # and drops the tags, so every later plan wants to add them again.
    response = _bucket_response_put(self, request, bucket_name, querystring)
    if not querystring and self.body:
        tags = _create_bucket_tags(self.body)
        if tags:
            self.backend.put_bucket_tagging(bucket_name, tags)
    return response


S3Response._bucket_response_put = _bucket_response_put_with_tags


_update_parameters = DBParameterGroup.update_parameters


def _update_parameters_as_user(self: DBParameterGroup, new_parameters: Iterable[dict[str, Any]]) -> None:
    # AWS reports a parameter set through ModifyDBParameterGroup with Source "user"; moto
    # keeps no Source, and the provider skips parameters without one, so a module's
    # parameter (postgres: rds.force_ssl) is planned again after every apply.
    _update_parameters(self, [{"Source": "user", **parameter} for parameter in new_parameters])


DBParameterGroup.update_parameters = _update_parameters_as_user


def _rule_description(self: SecurityGroupRule) -> str | None:
    # A rule that references a security group carries its description in the group pair, not
    # in an IP range; moto reads only the IP range's, so such a rule loses its description.
    return self.ip_range.get("Description") or self.source_group.get("Description")


SecurityGroupRule.description = property(_rule_description)


_create_service = EcsResponse.create_service


def _create_service_with_settings(self: EcsResponse) -> Any:
    # moto's CreateService drops these two settings, so describe_services never returns
    # them and the provider plans them again (web-service sets both).
    result = _create_service(self)
    service = self.ecs_backend.describe_services(
        self._get_param("cluster", "default"), [self._get_param("serviceName")]
    )[0][0]
    service.enable_ecs_managed_tags = bool(self._get_param("enableECSManagedTags", False))
    grace = self._get_param("healthCheckGracePeriodSeconds")
    if grace is not None:
        service.health_check_grace_period_seconds = int(grace)
    return result


EcsResponse.create_service = _create_service_with_settings


# CloudFront (static-site): moto keeps no origin access control on an origin, invents
# ForwardedValues for a cache behaviour that uses a cache policy, and returns empty
# certificate ids (so the provider reads an SSL support method) for the default certificate.
# AWS does none of these, and the provider plans each of them again after every apply.
_origin_init = Origin.__init__


def _origin_with_access_control(self: Origin, origin: dict[str, Any]) -> None:
    _origin_init(self, origin)
    self.origin_access_control_id = origin.get("OriginAccessControlId")


Origin.__init__ = _origin_with_access_control

_cache_behaviour_init = DefaultCacheBehaviour.__init__


def _cache_behaviour_without_invented_forwarding(self: DefaultCacheBehaviour, config: dict[str, Any]) -> None:
    _cache_behaviour_init(self, config)
    if "ForwardedValues" not in config:
        self.forwarded_values = None


DefaultCacheBehaviour.__init__ = _cache_behaviour_without_invented_forwarding

_viewer_certificate_init = ViewerCertificate.__init__


def _viewer_certificate_without_empty_ids(self: ViewerCertificate, config: dict[str, Any]) -> None:
    _viewer_certificate_init(self, config)
    self.iam_certificate_id = config.get("IAMCertificateId") or None
    self.acm_certificate_arn = config.get("ACMCertificateArn") or None


ViewerCertificate.__init__ = _viewer_certificate_without_empty_ids
