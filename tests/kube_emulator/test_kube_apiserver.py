"""The emulator, driven only through the official ``kubernetes`` client (plus plain HTTP for OIDC discovery)."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from exporter.demo.kube_apiserver import KubeApiEmulator, Rule
from exporter.demo.sa_token_issuer import ServiceAccountTokenIssuer

from .conftest import ADMIN_TOKEN, EXPORTER_TOKEN, IRSA, OBJSTORE_YAML, READER_TOKEN, STORE_ROLE

MakeClient = Callable[[str], Any]


def token_request(audiences: list[str] | None = None, seconds: int | None = None) -> Any:
    return client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=audiences, expiration_seconds=seconds))


def status_of(err: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(err.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == err.status
    return body


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def verify_via_discovery(token: str, issuer: str, audience: str) -> dict[str, Any]:
    """What an STS does: discovery doc → jwks_uri → key by ``kid`` → verify iss/aud/exp."""
    discovery = http_json(f"{issuer}/.well-known/openid-configuration")
    assert discovery["issuer"] == issuer
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer)
    return claims


# --------------------------------------------------------------------------- ServiceAccounts + TokenRequest


def test_read_service_account_with_irsa_annotations(api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    sa = core.read_namespaced_service_account("thanos-store", "thanos")
    assert sa.kind == "ServiceAccount" and sa.api_version == "v1"
    assert sa.metadata.annotations == IRSA
    assert sa.metadata.uid and sa.metadata.resource_version.isdigit()
    assert isinstance(sa.metadata.creation_timestamp, dt.datetime)
    bare = core.read_namespaced_service_account("thanos-compact", "thanos")
    assert not bare.metadata.annotations  # omitted, like the real apiserver's omitempty


def test_token_request_audience_and_expiry_verify_against_discovery(
        emu: KubeApiEmulator, api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    before = int(time.time())
    tr = core.create_namespaced_service_account_token("thanos-store", "thanos",
                                                      token_request(["sts.amazonaws.com"], 7200))
    assert tr.kind == "TokenRequest" and tr.api_version == "authentication.k8s.io/v1"
    assert tr.spec.audiences == ["sts.amazonaws.com"] and tr.spec.expiration_seconds == 7200
    token = tr.status.token
    exp_ts = tr.status.expiration_timestamp.timestamp()
    assert before + 7200 <= exp_ts <= time.time() + 7200

    claims = verify_via_discovery(token, emu.issuer_url, "sts.amazonaws.com")
    uid = core.read_namespaced_service_account("thanos-store", "thanos").metadata.uid
    assert claims["iss"] == emu.url == emu.issuer_url
    assert claims["sub"] == "system:serviceaccount:thanos:thanos-store"
    assert claims["aud"] == ["sts.amazonaws.com"]
    assert claims["exp"] == int(exp_ts) and claims["exp"] - claims["iat"] == 7200
    assert claims["nbf"] == claims["iat"] and claims["jti"]
    assert claims["kubernetes.io"] == {"namespace": "thanos",
                                       "serviceaccount": {"name": "thanos-store", "uid": uid}}
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "kid": emu.issuer.jwks()["keys"][0]["kid"]}
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, emu.issuer.public_key, algorithms=["RS256"], audience="pods.eks.amazonaws.com")


def test_token_request_defaults_to_api_audience_and_one_hour(emu: KubeApiEmulator, api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    tr = core.create_namespaced_service_account_token("thanos-compact", "thanos", token_request())
    assert tr.spec.audiences == [emu.issuer_url] and tr.spec.expiration_seconds == 3600
    claims = verify_via_discovery(tr.status.token, emu.issuer_url, emu.issuer_url)
    assert claims["exp"] - claims["iat"] == 3600


def test_token_request_pod_identity_audience(emu: KubeApiEmulator, api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    tr = core.create_namespaced_service_account_token("thanos-store", "thanos",
                                                      token_request(["pods.eks.amazonaws.com"], 86400))
    claims = verify_via_discovery(tr.status.token, emu.issuer_url, "pods.eks.amazonaws.com")
    assert claims["aud"] == ["pods.eks.amazonaws.com"] and claims["exp"] - claims["iat"] == 86400


def test_token_request_rejects_less_than_ten_minutes(api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service_account_token("thanos-store", "thanos", token_request(None, 599))
    body = status_of(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == ('TokenRequest.authentication.k8s.io "thanos-store" is invalid: spec.expirationSeconds: '
                               "Invalid value: 599: may not specify a duration less than 10 minutes")
    assert core.create_namespaced_service_account_token("thanos-store", "thanos", token_request(None, 600))


def test_max_token_expiration_clamps(signing_key: Any) -> None:
    with KubeApiEmulator(signing_key=signing_key, max_token_expiration=3600) as emu:
        emu.add_service_account("thanos", "thanos-store")
        emu.add_token(ADMIN_TOKEN, "admin", groups=["system:masters"])
        with client.ApiClient(emu.client_configuration(ADMIN_TOKEN)) as api:
            tr = client.CoreV1Api(api).create_namespaced_service_account_token(
                "thanos-store", "thanos", token_request(["sts.amazonaws.com"], 86400))
    assert tr.spec.expiration_seconds == 3600


# --------------------------------------------------------------------------- 401 / 403 / 404


@pytest.mark.parametrize("token", ["not-a-known-token", None])
def test_unknown_or_missing_token_is_401(emu: KubeApiEmulator, token: str | None) -> None:
    cfg = client.Configuration()
    cfg.host = emu.url
    if token is not None:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(cfg) as api, pytest.raises(ApiException) as err:
        client.CoreV1Api(api).read_namespaced_service_account("thanos-store", "thanos")
    body = status_of(err.value)
    assert err.value.status == 401 and body["reason"] == "Unauthorized" and body["message"] == "Unauthorized"


def test_rbac_denies_token_create_with_real_message(api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(READER_TOKEN))
    assert core.read_namespaced_service_account("thanos-store", "thanos").metadata.name == "thanos-store"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service_account_token("thanos-store", "thanos", token_request(["sts.amazonaws.com"]))
    body = status_of(err.value)
    assert err.value.status == 403 and err.value.reason == "Forbidden" and body["reason"] == "Forbidden"
    assert body["message"] == ('serviceaccounts "thanos-store" is forbidden: User "reader" cannot create resource '
                               '"serviceaccounts/token" in API group "" in the namespace "thanos"')
    assert body["details"] == {"name": "thanos-store", "kind": "serviceaccounts"}


def test_rbac_namespace_scope_and_cluster_scope_messages(api_client: MakeClient) -> None:
    reader = api_client(READER_TOKEN)
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(reader).read_namespaced_service_account("thanos-storegateway", "monitoring")
    assert err.value.status == 403
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(reader).list_deployment_for_all_namespaces()
    assert status_of(err.value)["message"] == (
        'deployments.apps is forbidden: User "reader" cannot list resource "deployments" in API group "apps" '
        "at the cluster scope")


def test_rbac_resource_names_and_authz_before_404(emu: KubeApiEmulator, api_client: MakeClient) -> None:
    emu.add_token("narrow", "narrow")
    emu.grant("narrow", Rule(verbs=["create"], resources=["serviceaccounts/token"], namespace="thanos",
                             resource_names=["thanos-store"]))
    core = client.CoreV1Api(api_client("narrow"))
    assert core.create_namespaced_service_account_token("thanos-store", "thanos", token_request()).status.token
    for name in ("thanos-compact", "does-not-exist"):  # a real apiserver authorizes before it looks up
        with pytest.raises(ApiException) as err:
            core.create_namespaced_service_account_token(name, "thanos", token_request())
        assert err.value.status == 403


def test_missing_service_account_is_404(api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    for call in (lambda: core.read_namespaced_service_account("ghost", "thanos"),
                 lambda: core.create_namespaced_service_account_token("ghost", "thanos", token_request())):
        with pytest.raises(ApiException) as err:
            call()
        body = status_of(err.value)
        assert err.value.status == 404 and body["reason"] == "NotFound"
        assert body["message"] == 'serviceaccounts "ghost" not found'
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(api_client(EXPORTER_TOKEN)).read_namespaced_deployment("ghost", "thanos")
    assert status_of(err.value)["message"] == 'deployments.apps "ghost" not found'


# --------------------------------------------------------------------------- workloads and secrets


def test_list_workloads_with_label_selectors(api_client: MakeClient) -> None:
    apps = client.AppsV1Api(api_client(EXPORTER_TOKEN))
    sts = apps.list_namespaced_stateful_set("thanos", label_selector="app.kubernetes.io/name=thanos-store")
    assert sts.kind == "StatefulSetList" and sts.metadata.resource_version.isdigit()
    assert [s.metadata.name for s in sts.items] == ["thanos-store"]
    store = sts.items[0]
    assert store.spec.template.spec.service_account_name == "thanos-store"
    assert store.spec.template.metadata.labels["app.kubernetes.io/component"] == "object-store-gateway"
    container = store.spec.template.spec.containers[0]
    assert container.args == ["store", "--objstore.config=$(OBJSTORE_CONFIG)"]
    ref = container.env[0].value_from.secret_key_ref
    assert (container.env[0].name, ref.name, ref.key) == ("OBJSTORE_CONFIG", "thanos-objectstorage", "thanos.yaml")

    all_thanos = apps.list_namespaced_stateful_set("thanos")
    assert [s.metadata.name for s in all_thanos.items] == ["thanos-compact", "thanos-store"]
    not_store = apps.list_namespaced_stateful_set("thanos", label_selector="app.kubernetes.io/name!=thanos-store")
    assert [s.metadata.name for s in not_store.items] == ["thanos-compact"]
    both = apps.list_stateful_set_for_all_namespaces(label_selector="app.kubernetes.io/component=storegateway")
    assert [(s.metadata.namespace, s.metadata.name) for s in both.items] == [("monitoring", "thanos-storegateway")]
    bitnami = both.items[0].spec.template.spec
    assert bitnami.volumes[0].secret.secret_name == "thanos-objstore-secret"

    deps = apps.list_namespaced_deployment(
        "thanos", label_selector="app.kubernetes.io/name==thanos-query,app.kubernetes.io/component")
    assert deps.kind == "DeploymentList" and [d.metadata.name for d in deps.items] == ["thanos-query"]
    assert apps.list_namespaced_deployment("thanos", label_selector="!app.kubernetes.io/name").items == []
    assert apps.read_namespaced_deployment("thanos-query", "thanos").spec.selector.match_labels[
        "app.kubernetes.io/name"] == "thanos-query"
    one = apps.list_namespaced_stateful_set("thanos", field_selector="metadata.name=thanos-compact")
    assert [s.metadata.name for s in one.items] == ["thanos-compact"]


def test_set_based_selector_is_rejected_not_ignored(api_client: MakeClient) -> None:
    apps = client.AppsV1Api(api_client(EXPORTER_TOKEN))
    with pytest.raises(ApiException) as err:
        apps.list_namespaced_stateful_set("thanos", label_selector="app.kubernetes.io/name in (thanos-store)")
    assert err.value.status == 400 and status_of(err.value)["reason"] == "BadRequest"


def test_get_secret(api_client: MakeClient) -> None:
    secret = client.CoreV1Api(api_client(EXPORTER_TOKEN)).read_namespaced_secret("thanos-objectstorage", "thanos")
    assert secret.kind == "Secret" and secret.type == "Opaque"
    assert base64.b64decode(secret.data["thanos.yaml"]).decode() == OBJSTORE_YAML


def test_namespaces_and_version(emu: KubeApiEmulator, api_client: MakeClient) -> None:
    api = api_client(EXPORTER_TOKEN)
    names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
    assert names == ["monitoring", "thanos"]
    version = client.VersionApi(api).get_code()
    assert (version.major, version.minor, version.git_version) == ("1", "31", "v1.31.0")


def test_mutations_are_visible_and_bump_resource_version(emu: KubeApiEmulator, api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    before = core.read_namespaced_service_account("thanos-store", "thanos").metadata
    emu.annotate("serviceaccounts", "thanos", "thanos-store", {"eks.amazonaws.com/role-arn": None})
    after = core.read_namespaced_service_account("thanos-store", "thanos").metadata
    assert "eks.amazonaws.com/role-arn" not in after.annotations
    assert after.uid == before.uid and int(after.resource_version) > int(before.resource_version)
    assert emu.delete("serviceaccounts", "thanos", "thanos-store")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_service_account("thanos-store", "thanos")
    assert err.value.status == 404


# --------------------------------------------------------------------------- the issuer itself


def test_jwks_and_discovery_shape(emu: KubeApiEmulator) -> None:
    discovery = http_json(f"{emu.url}/.well-known/openid-configuration")
    assert discovery == {"issuer": emu.url, "jwks_uri": f"{emu.url}/openid/v1/jwks",
                         "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": ["RS256"]}
    [key] = http_json(discovery["jwks_uri"])["keys"]
    assert {k: key[k] for k in ("kty", "alg", "use", "e")} == {"kty": "RSA", "alg": "RS256", "use": "sig",
                                                                 "e": "AQAB"}
    assert key["kid"] and key["n"]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    cert = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
    assert cert.fingerprint(hashes.SHA1()).hex() == emu.oidc_thumbprint()
    assert len(emu.oidc_thumbprint()) == 40


def test_directly_minted_bad_tokens_fail_verification(emu: KubeApiEmulator) -> None:
    good = emu.mint_token("thanos", "thanos-store", audiences=["sts.amazonaws.com"])
    assert verify_via_discovery(good, emu.issuer_url, "sts.amazonaws.com")["sub"].endswith(":thanos-store")
    wrong_aud = emu.mint_token("thanos", "thanos-store", audiences=["other"])
    expired = emu.mint_token("thanos", "thanos-store", audiences=["sts.amazonaws.com"], now=time.time() - 7200)
    foreign = ServiceAccountTokenIssuer(emu.issuer_url).mint(
        "thanos", "thanos-store", "uid", audiences=["sts.amazonaws.com"])[0]
    for token, error in ((wrong_aud, jwt.InvalidAudienceError), (expired, jwt.ExpiredSignatureError),
                         (foreign, jwt.PyJWKClientError)):
        with pytest.raises(error):
            verify_via_discovery(token, emu.issuer_url, "sts.amazonaws.com")


def test_service_account_tokens_authenticate_to_the_emulator(emu: KubeApiEmulator, api_client: MakeClient) -> None:
    """A bound token for the exporter's own SA is a valid bearer token, until the SA is deleted/recreated."""
    emu.add_service_account("monitoring", "objstore-permission-exporter")
    emu.grant("system:serviceaccounts:monitoring", Rule(verbs=["get"], resources=["serviceaccounts"]))
    token = emu.mint_token("monitoring", "objstore-permission-exporter")  # API audience by default
    core = client.CoreV1Api(api_client(token))
    assert core.read_namespaced_service_account("thanos-store", "thanos").metadata.name == "thanos-store"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service_account_token("thanos-store", "thanos", token_request())
    assert status_of(err.value)["message"].startswith('serviceaccounts "thanos-store" is forbidden: User '
                                                      '"system:serviceaccount:monitoring:objstore-permission-exporter"')
    sts_token = emu.mint_token("monitoring", "objstore-permission-exporter", audiences=["sts.amazonaws.com"])
    with pytest.raises(ApiException) as err:  # not for the apiserver's audience
        client.CoreV1Api(api_client(sts_token)).read_namespaced_service_account("thanos-store", "thanos")
    assert err.value.status == 401
    emu.delete("serviceaccounts", "monitoring", "objstore-permission-exporter")
    emu.add_service_account("monitoring", "objstore-permission-exporter")  # new uid
    with pytest.raises(ApiException) as err:
        core.read_namespaced_service_account("thanos-store", "thanos")
    assert err.value.status == 401


# --------------------------------------------------------------------------- kubeconfig, TLS, lifecycle


def test_load_kube_config_from_file(emu: KubeApiEmulator, tmp_path: Path) -> None:
    path = emu.write_kubeconfig(tmp_path / "kubeconfig", EXPORTER_TOKEN, namespace="thanos")
    assert path.stat().st_mode & 0o077 == 0
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        assert client.CoreV1Api(api).read_namespaced_service_account("thanos-store", "thanos").metadata.annotations[
            "eks.amazonaws.com/role-arn"] == STORE_ROLE
    # The default-global path, as an exporter started with --kubeconfig would do it.
    saved = client.Configuration.get_default_copy()
    try:
        config.load_kube_config(config_file=str(path))
        sa = client.CoreV1Api().read_namespaced_service_account("thanos-store", "thanos")
        assert sa.metadata.name == "thanos-store"
    finally:
        client.Configuration.set_default(saved)


def test_tls_kubeconfig_and_in_cluster_loader(signing_key: Any, tmp_path: Path) -> None:
    with KubeApiEmulator(signing_key=signing_key, tls=True) as emu:
        assert emu.url.startswith("https://") and emu.issuer_url == emu.url and emu.ca_cert_path
        emu.add_service_account("thanos", "thanos-store", annotations=IRSA)
        emu.add_token(ADMIN_TOKEN, "admin", groups=["system:masters"])
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(emu.write_kubeconfig(tmp_path / "kc", ADMIN_TOKEN)),
                                client_configuration=cfg)
        with client.ApiClient(cfg) as api:
            assert client.CoreV1Api(api).read_namespaced_service_account("thanos-store", "thanos").metadata.uid
        # In-cluster style: token file + CA file + KUBERNETES_SERVICE_HOST/PORT.
        token_file = tmp_path / "token"
        token_file.write_text(ADMIN_TOKEN)
        port = emu.url.rsplit(":", 1)[1]
        incluster = client.Configuration()
        config.incluster_config.InClusterConfigLoader(
            token_filename=str(token_file), cert_filename=str(emu.ca_cert_path),
            environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port},
        ).load_and_set(incluster)
        with client.ApiClient(incluster) as api:
            tr = client.CoreV1Api(api).create_namespaced_service_account_token(
                "thanos-store", "thanos", token_request(["sts.amazonaws.com"]))
        assert tr.status.token
    assert not emu.ca_cert_path.exists()


def test_concurrent_token_requests(api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))

    def mint(i: int) -> str:
        sa = ("thanos-store", "thanos-compact", "thanos-query")[i % 3]
        token: str = core.create_namespaced_service_account_token(sa, "thanos", token_request()).status.token
        return token

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(mint, range(48)))
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 48


def test_request_log_names_users_never_tokens(emu: KubeApiEmulator, api_client: MakeClient) -> None:
    core = client.CoreV1Api(api_client(EXPORTER_TOKEN))
    core.create_namespaced_service_account_token("thanos-store", "thanos", token_request())
    rec = emu.requests[-1]
    assert (rec.method, rec.path, rec.user, rec.status) == (
        "POST", "/api/v1/namespaces/thanos/serviceaccounts/thanos-store/token", "exporter", 201)
    assert EXPORTER_TOKEN not in repr(emu.requests)


def test_stop_closes_port_and_keepalive_connections(signing_key: Any) -> None:
    emu = KubeApiEmulator(signing_key=signing_key).start()
    emu.add_token(ADMIN_TOKEN, "admin", groups=["system:masters"])
    api = client.ApiClient(emu.client_configuration(ADMIN_TOKEN))
    core = client.CoreV1Api(api)
    assert core.list_namespace().items == []  # opens a pooled keep-alive connection
    emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(Exception):  # noqa: B017 - urllib3 raises MaxRetryError/ProtocolError variants
        core.list_namespace(_request_timeout=2)
    api.close()
