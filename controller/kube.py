"""The one module that talks to the Kubernetes client.

Everything else sees plain JSON dictionaries (exactly what the API server and
``kubectl get -o json`` return) and our own error types.  We skip the client's
model classes on purpose: deserialising thousands of ReplicaSets into Python
objects costs more than the network, and a snapshot file gives dictionaries
anyway, so one shape serves both.

Reads are retried on transient failures (timeouts, 429, 5xx); writes are never
retried blindly, because a write that timed out may have landed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode

from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from controller.errors import (
    ClusterError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TerminalError,
    TransientError,
    UnreachableError,
    UserInputError,
)

JSON = dict[str, Any]

MERGE_PATCH: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API: enough to build its REST paths."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base


class Kube:
    """A thin, counted, error-translating handle on one cluster.

    ``requests`` counts every HTTP round trip, so benchmarks and tests can hold
    the tool to its budget of few list calls.
    """

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self.requests = 0
        self._api, self.default_namespace = _make_api_client(kubeconfig, context)

    @property
    def server(self) -> str:
        return str(self._api.configuration.host)

    def close(self) -> None:
        self._api.close()

    # -- generic verbs --------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> JSON:
        """One HTTP round trip; returns the decoded JSON body or raises our errors."""
        from kubernetes.client.exceptions import ApiException

        url_query = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        full = path + ("?" + urlencode(url_query) if url_query else "")
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        with self._lock:
            self.requests += 1
        try:
            _, url, hdrs, ser_body, _ = self._api.param_serialize(
                method=method,
                resource_path=full,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(
                method, url, header_params=hdrs, body=ser_body, _request_timeout=self._timeout
            )
            data = response.read()
        except ApiException as err:
            raise translate_api_error(err.status, err.body or err.reason, method, path) from err
        except Exception as err:  # urllib3 and socket errors carry no status
            raise _translate_transport_error(err, self.server) from err
        if not 200 <= response.status <= 299:
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            raise translate_api_error(response.status, text, method, path)
        if not data:
            return {}
        decoded = _loads(data)
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    @retry(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.2, max=2),
        reraise=True,
    )
    def read(
        self,
        path: str,
        query: Mapping[str, str | int | bool] | None = None,
        accept: str = "application/json",
    ) -> JSON:
        """A GET, retried on transient failures only."""
        return self.request("GET", path, query=query, accept=accept)

    def get(self, resource: Resource, namespace: str | None, name: str) -> JSON:
        obj = self.read(resource.path(namespace, name))
        obj.setdefault("kind", resource.kind)
        obj.setdefault("apiVersion", resource.api_version)
        return obj

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        selector: str | None = None,
        field_selector: str | None = None,
        *,
        page_size: int = 500,
        metadata_only: bool = False,
    ) -> list[JSON]:
        """All objects of one kind in one namespace (or all); each item gets kind and apiVersion.

        A list response omits them per item; we restore them so a view built from
        the live cluster is indistinguishable from one read from a snapshot.
        ``page_size`` trades round trips for response size (assess reads whole
        namespaces in one page).  ``metadata_only`` asks the server for
        PartialObjectMetadata: names, labels, annotations and times without
        the payload, which is how Secrets are read without their values ever
        leaving the API server.
        """
        query: dict[str, str | int | bool] = {}
        if selector:
            query["labelSelector"] = selector
        if field_selector:
            query["fieldSelector"] = field_selector
        accept = (
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            if metadata_only
            else "application/json"
        )
        items: list[JSON] = []
        for page in self._pages(resource.path(namespace), query, page_size, accept):
            for item in page.get("items") or []:
                if metadata_only:
                    item["kind"] = resource.kind
                    item["apiVersion"] = resource.api_version
                item.setdefault("kind", resource.kind)
                item.setdefault("apiVersion", resource.api_version)
                items.append(item)
        return items

    def _pages(
        self,
        path: str,
        query: dict[str, str | int | bool],
        page_size: int = 500,
        accept: str = "application/json",
    ) -> Iterator[JSON]:
        query = dict(query, limit=page_size)
        while True:
            page = self.read(path, query, accept)
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            query["continue"] = token

    def create(
        self, resource: Resource, namespace: str | None, body: JSON, *, dry_run: bool = False
    ) -> JSON:
        query = {"dryRun": "All"} if dry_run else None
        return self.request("POST", resource.path(namespace), query=query, body=body)

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        content_type: str = MERGE_PATCH,
        dry_run: bool = False,
        field_manager: str = "rollback-controller",
        subresource: str | None = None,
    ) -> JSON:
        """A PATCH; preconditions travel in the body (resourceVersion, or a JSON Patch test)."""
        path = resource.path(namespace, name) + (f"/{subresource}" if subresource else "")
        query: dict[str, str | int | bool] = {"fieldManager": field_manager}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", path, query=query, body=body, content_type=content_type)

    def replace(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: JSON,
        *,
        dry_run: bool = False,
    ) -> JSON:
        query = {"dryRun": "All"} if dry_run else None
        return self.request("PUT", resource.path(namespace, name), query=query, body=body)

    def self_subject_review(self) -> JSON:
        """Who the API server says we are: ``status.userInfo`` of a SelfSubjectReview.

        One POST to authentication.k8s.io/v1 (GA since Kubernetes 1.28); every
        authenticated user may make it (ClusterRole ``system:basic-user``).
        Nothing is stored.  The answer is the identity audit records carry.
        """
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        return self.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=body)

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        precondition_rv: str | None = None,
    ) -> JSON:
        body = {"preconditions": {"resourceVersion": precondition_rv}} if precondition_rv else None
        return self.request("DELETE", resource.path(namespace, name), body=body)


def _loads(data: bytes | str) -> Any:
    """Decode an API response: orjson when installed (a namespace's LIST can be tens of
    megabytes, and orjson decodes it about twice as fast), else the standard library."""
    try:
        import orjson
    except ImportError:
        return json.loads(data)
    return orjson.loads(data)


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _make_api_client(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """An ApiClient from a kubeconfig (or in-cluster config when none is found).

    Also returns the namespace kubectl would use by default: the context's
    ``namespace``, the service account's namespace in a pod, else ``default``.
    """
    import os

    from kubernetes import client, config

    configuration = client.Configuration()
    namespace = "default"
    try:
        if kubeconfig or context or os.environ.get("KUBECONFIG") or _default_kubeconfig_exists():
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
            namespace = _context_namespace(kubeconfig, context)
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            namespace = _incluster_namespace()
    except config.ConfigException as err:
        raise UserInputError(
            f"cannot load Kubernetes configuration: {_one_line(str(err))}"
        ) from err
    except FileNotFoundError as err:
        raise UserInputError(f"kubeconfig not found: {err.filename}") from err
    except Exception as err:  # malformed YAML, bad base64 in certificates, ...
        raise UserInputError(
            f"cannot load Kubernetes configuration: {_one_line(str(err))}"
        ) from err
    # Fail fast when the server is down: an engineer in an outage must not wait
    # for the default three urllib3 retries per call.
    configuration.retries = 0
    return client.ApiClient(configuration), namespace


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except Exception:  # already loaded once; a second failure only loses the default
        return "default"
    chosen = (
        next((c for c in contexts or [] if c.get("name") == context), None) if context else active
    )
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def _incluster_namespace() -> str:
    from pathlib import Path

    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    try:
        return path.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def _default_kubeconfig_exists() -> bool:
    from pathlib import Path

    return (Path.home() / ".kube" / "config").exists()


def translate_api_error(status: int, body: Any, method: str, path: str) -> ClusterError:
    """Map an API status to our error types with the server's own message.

    The API's message already names the verb and resource for a 403
    (``deployments.apps "web" is forbidden: User "x" cannot patch resource ...``),
    which is exactly what the engineer needs to ask for the permission.
    """
    message, details = _status_message(body)
    if status == 0:
        return UnreachableError(
            f"cannot reach the Kubernetes API: {_one_line(message or str(body))}"
        )
    if status == 401:
        return ForbiddenError(f"the cluster rejected our credentials (401 Unauthorized): {message}")
    if status == 403:
        verb, resource = _forbidden_parts(message, method, path)
        return ForbiddenError(f"forbidden: {message}", verb=verb, resource=resource)
    if status == 404:
        return NotFoundError(message or f"not found: {path}")
    if status == 409:
        return ConflictError(message or f"conflict on {path}")
    if status == 429 or status >= 500:
        return TransientError(f"the API server is struggling ({status}): {message}")
    if details:
        return TerminalError(f"{message} ({details})")
    return TerminalError(message or f"{method} {path} failed with {status}")


def _status_message(body: Any) -> tuple[str, str]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return _one_line(body), ""
    if isinstance(body, dict):
        causes = (body.get("details") or {}).get("causes") or []
        detail = "; ".join(str(c.get("message", "")) for c in causes if isinstance(c, dict))
        return _one_line(str(body.get("message", ""))), _one_line(detail)
    return "", ""


_VERBS: Final = {
    "GET": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def _forbidden_parts(message: str, method: str, path: str) -> tuple[str, str]:
    """Verb and resource from the API's 403 message, else from the request."""
    import re

    match = re.search(r'cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?', message)
    if match:
        verb, resource, group = match.groups()
        return verb, f"{resource}.{group}" if group else resource
    return _VERBS.get(method, method.lower()), path


def _translate_transport_error(err: Exception, server: str) -> ClusterError:
    name = type(err).__name__
    text = _one_line(str(err))
    if "timed out" in text.lower() or "Timeout" in name:
        return TransientError(f"the Kubernetes API at {server} timed out")
    if any(word in name for word in ("MaxRetry", "NewConnection", "Connection", "Protocol")):
        return UnreachableError(f"cannot reach the Kubernetes API at {server}: {_reason(text)}")
    return UnreachableError(f"cannot talk to the Kubernetes API at {server}: {name}: {text}")


def _reason(text: str) -> str:
    for hint in (
        "Connection refused",
        "Name or service not known",
        "No route to host",
        "certificate verify failed",
    ):
        if hint in text:
            return hint.lower()
    return text[:160]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def core(kind: str, plural: str, namespaced: bool = True) -> Resource:
    return Resource(kind, "", "v1", plural, namespaced)


# Every kind the tool reads or writes.  Custom resources may be absent from a
# cluster; callers treat their 404 as "not installed".
DEPLOYMENT: Final = Resource("Deployment", "apps", "v1", "deployments")
REPLICASET: Final = Resource("ReplicaSet", "apps", "v1", "replicasets")
STATEFULSET: Final = Resource("StatefulSet", "apps", "v1", "statefulsets")
DAEMONSET: Final = Resource("DaemonSet", "apps", "v1", "daemonsets")
CONTROLLERREVISION: Final = Resource("ControllerRevision", "apps", "v1", "controllerrevisions")
POD: Final = core("Pod", "pods")
CONFIGMAP: Final = core("ConfigMap", "configmaps")
SECRET: Final = core("Secret", "secrets")
EVENT: Final = core("Event", "events")
EVENT_V1: Final = Resource("Event", "events.k8s.io", "v1", "events")
NODE: Final = core("Node", "nodes", namespaced=False)
NAMESPACE: Final = core("Namespace", "namespaces", namespaced=False)
RESOURCEQUOTA: Final = core("ResourceQuota", "resourcequotas")
SERVICE: Final = core("Service", "services")
HPA: Final = Resource("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers")
JOB: Final = Resource("Job", "batch", "v1", "jobs")
ENDPOINTSLICE: Final = Resource("EndpointSlice", "discovery.k8s.io", "v1", "endpointslices")
LEASE: Final = Resource("Lease", "coordination.k8s.io", "v1", "leases")
FEATUREFLAG: Final = Resource("FeatureFlag", "core.openfeature.dev", "v1beta1", "featureflags")
FEATUREFLAGSOURCE: Final = Resource(
    "FeatureFlagSource", "core.openfeature.dev", "v1beta1", "featureflagsources"
)
ARGO_APPLICATION: Final = Resource("Application", "argoproj.io", "v1alpha1", "applications")
FLUX_KUSTOMIZATION: Final = Resource(
    "Kustomization", "kustomize.toolkit.fluxcd.io", "v1", "kustomizations"
)
FLUX_HELMRELEASE: Final = Resource("HelmRelease", "helm.toolkit.fluxcd.io", "v2", "helmreleases")

RESOURCES: Final[Sequence[Resource]] = (
    DEPLOYMENT,
    REPLICASET,
    STATEFULSET,
    DAEMONSET,
    CONTROLLERREVISION,
    POD,
    CONFIGMAP,
    SECRET,
    EVENT,
    EVENT_V1,
    NODE,
    NAMESPACE,
    RESOURCEQUOTA,
    SERVICE,
    HPA,
    JOB,
    ENDPOINTSLICE,
    LEASE,
    FEATUREFLAG,
    FEATUREFLAGSOURCE,
    ARGO_APPLICATION,
    FLUX_KUSTOMIZATION,
    FLUX_HELMRELEASE,
)
