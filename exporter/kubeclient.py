"""The official Kubernetes client, configured the way the exporter runs: in-cluster inside a pod, else a kubeconfig."""

from __future__ import annotations

import os
from typing import Any

from exporter.config import KubernetesSettings


def api_client(settings: KubernetesSettings) -> Any:
    """A `kubernetes.client.ApiClient`; imported lazily (the client is slow to import and only some configs need it)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if settings.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(settings.kubeconfig) if settings.kubeconfig else None,
            context=settings.context, client_configuration=cfg)
    return client.ApiClient(cfg)
