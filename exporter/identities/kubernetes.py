"""`kubernetes`: probe as the component's ServiceAccount (IRSA or EKS Pod Identity), as its pods would.

The exporter reads the ServiceAccount, mints a short-lived token for it with the TokenRequest API, and
exchanges it exactly as the AWS SDK in the pod would. The token goes to STS / EKS Auth and nowhere else: it
is never logged, stored or exported. RBAC needed: `get` on the ServiceAccounts and `create` on their
`serviceaccounts/token` subresource (restrictable with resourceNames).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exporter.clients import aws_sts_url, configured_region, service_client
from exporter.config import KubernetesIdentity, KubernetesSettings
from exporter.credentials import Credentials
from exporter.identities.base import IdentityError, IdentitySource, ResolvedIdentity
from exporter.identities.sts import assume_error
from exporter.identities.sts_context import STSContext
from exporter.identities.web_identity import assume_role_with_web_identity
from exporter.kubeclient import api_client
from exporter.objstore import S3Config, is_aws_endpoint
from exporter.reasons import Reason, classify

ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
AUDIENCE_ANNOTATION = "eks.amazonaws.com/audience"
REGIONAL_STS_ANNOTATION = "eks.amazonaws.com/sts-regional-endpoints"
EXPIRATION_ANNOTATION = "eks.amazonaws.com/token-expiration"
IRSA_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_AUDIENCE = "pods.eks.amazonaws.com"


class KubernetesAPI:
    """The two calls the exporter makes, through the official client; connected lazily on first use."""

    def __init__(self, settings: KubernetesSettings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self._core: Any = None
        self._lock = threading.Lock()

    def core(self) -> Any:
        with self._lock:
            if self._core is None:
                from kubernetes import client

                self._core = client.CoreV1Api(api_client(self.settings))
            return self._core

    def annotations(self, namespace: str, name: str) -> dict[str, str]:
        try:
            sa = self.core().read_namespaced_service_account(name, namespace, _request_timeout=self.timeout)
        except Exception as exc:
            raise _api_error(exc, f"reading ServiceAccount {namespace}/{name}") from None
        return dict(sa.metadata.annotations or {})

    def token(self, namespace: str, name: str, audience: str, expiration: int) -> tuple[str, datetime | None]:
        from kubernetes import client

        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[audience], expiration_seconds=expiration))
        try:
            answer = self.core().create_namespaced_service_account_token(
                name, namespace, request, _request_timeout=self.timeout)
        except Exception as exc:
            raise _api_error(exc, f"TokenRequest for {namespace}/{name}") from None
        return str(answer.status.token), answer.status.expiration_timestamp


def _api_error(exc: Exception, what: str) -> IdentityError:
    status = getattr(exc, "status", None)
    if status == 404:
        return IdentityError(Reason.SERVICE_ACCOUNT_NOT_FOUND, f"{what}: not found")
    if status in (401, 403):
        return IdentityError(Reason.TOKEN_REQUEST_DENIED, f"{what}: forbidden for the exporter (HTTP {status})")
    if status is not None:
        return IdentityError(Reason.SERVER_ERROR if status >= 500 else Reason.OTHER, f"{what}: HTTP {status}")
    name = type(exc).__name__
    reason = Reason.TIMEOUT if "Timeout" in name else Reason.CONNECTION_ERROR if (
        "Connection" in name or "MaxRetry" in name or "Protocol" in name) else classify(exc)
    return IdentityError(reason, f"{what}: {name}")


@dataclass(frozen=True)
class _Fallback:
    """What a pod without a role gets: the node's role (via the exporter's chain) or nothing."""

    kind: str
    node: IdentitySource | None

    def error(self, reason: Reason, message: str) -> IdentityError:
        """The identity failure, carrying what the pod would really run as, or why that could not be had."""
        if self.kind == "anonymous":
            return IdentityError(reason, message, ResolvedIdentity(None, "anonymous"))
        if self.kind == "node" and self.node is not None:
            try:
                node = self.node.resolve()
            except IdentityError as err:
                return IdentityError(reason, f"{message}; the node fallback failed ({err.reason}): {err}")
            return IdentityError(reason, message, ResolvedIdentity(node.credentials, "node_fallback",
                                                                   node.principal_hint))
        return IdentityError(reason, message)


class KubernetesSource(IdentitySource):
    def __init__(
        self, cfg: KubernetesIdentity, namespace: str, service_account: str, api: KubernetesAPI, s3: S3Config,
        sts: STSContext, node: IdentitySource | None,
    ) -> None:
        self.cfg = cfg
        self.namespace = namespace
        self.service_account = service_account
        self.api = api
        self.s3 = s3
        self.sts = sts
        self.fallback = _Fallback(cfg.fallback, node)

    def resolve(self) -> ResolvedIdentity:
        annotations = self.api.annotations(self.namespace, self.service_account)
        if self.cfg.mode == "pod_identity":
            return self._pod_identity(annotations)
        role = annotations.get(ROLE_ANNOTATION, "").strip()
        if not role:
            raise self.fallback.error(
                Reason.NO_ROLE_ANNOTATION,
                f"ServiceAccount {self.namespace}/{self.service_account} has no {ROLE_ANNOTATION} annotation: "
                "its pods run as the node's role",
            )
        audience = self.cfg.audience or annotations.get(AUDIENCE_ANNOTATION) or IRSA_AUDIENCE
        token, _ = self.api.token(self.namespace, self.service_account, audience, self._expiration(annotations))
        return assume_role_with_web_identity(
            self._irsa_sts(annotations), role, token, self.cfg.session_name, 3600, "kubernetes_irsa")

    def _expiration(self, annotations: dict[str, str]) -> int:
        value = annotations.get(EXPIRATION_ANNOTATION, "")
        if value.isdigit():
            return max(600, min(int(value), 86400))
        return int(self.cfg.token_expiration)

    def _irsa_sts(self, annotations: dict[str, str]) -> STSContext:
        """Like the EKS pod identity webhook: regional STS when annotated so, else the global endpoint (AWS).

        An STS endpoint in the identity config or in the Thanos objstore config (`sts_endpoint`, which
        minio-go uses for the web identity exchange) wins, as it does in the component's pods.
        """
        if self.cfg.sts_endpoint or self.s3.sts_endpoint or not is_aws_endpoint(self.s3.endpoint):
            return self.sts
        region = self.cfg.sts_region or configured_region(self.s3)
        if annotations.get(REGIONAL_STS_ANNOTATION, "").lower() == "true" and region:
            return STSContext(aws_sts_url(region), region, self.sts.timeout, self.sts.verify)
        return STSContext(aws_sts_url(""), "us-east-1", self.sts.timeout, self.sts.verify)

    def _pod_identity(self, annotations: dict[str, str]) -> ResolvedIdentity:
        """eks-auth:AssumeRoleForPodIdentity, signed with the exporter's own (node) credentials like the agent.

        AWS documents this API as meant for the EKS Pod Identity Agent; the exporter calls it the same way.
        """
        token, _ = self.api.token(self.namespace, self.service_account,
                                  self.cfg.audience or POD_IDENTITY_AUDIENCE, self._expiration(annotations))
        if self.fallback.node is None:
            raise IdentityError(Reason.INVALID_CREDENTIALS, "pod_identity needs node credentials to call EKS Auth")
        signer = self.fallback.node.resolve().credentials
        region = self.cfg.sts_region or configured_region(self.s3) or "us-east-1"
        endpoint = self.cfg.eks_auth_endpoint or f"https://eks-auth.{region}.api.aws"
        try:
            answer = service_client("eks-auth", endpoint, region, signer, self.sts.timeout, self.sts.verify) \
                .assume_role_for_pod_identity(clusterName=self.cfg.cluster_name, token=token)
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code") or "")
            if code == "ResourceNotFoundException":
                raise self.fallback.error(
                    Reason.NO_ROLE_ANNOTATION,
                    f"no Pod Identity association for {self.namespace}/{self.service_account}") from None
            raise assume_error(exc, "AssumeRoleForPodIdentity") from None
        c = answer["credentials"]
        return ResolvedIdentity(
            Credentials(c["accessKeyId"], c["secretAccessKey"], c.get("sessionToken"), c.get("expiration")),
            "kubernetes_pod_identity", str((answer.get("assumedRoleUser") or {}).get("arn") or ""))
