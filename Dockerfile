# rollback-controller image: the `rollback` CLI, entry point of the in-cluster controller.
#
#   docker build -t ghcr.io/example/rollback-controller:0.1.0 .
#   (then set that image in manifests/controller.yaml)
#
# Two stages: build a wheel with its dependencies, install them into a slim runtime that runs
# as an unprivileged user with a read-only root filesystem (manifests/controller.yaml).
# Not built in this repository's CI: its machines have no container runtime.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controller ./controller
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# gitpython is a dependency (for `rollback assess --git-repo`); the controller never reads git,
# so no git binary, and gitpython must not complain about its absence at import.
ENV PYTHONUNBUFFERED=1 \
    GIT_PYTHON_REFRESH=quiet \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# pip compiles bytecode at install time: nothing is written at run time (read-only root).
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --uid 65532 --user-group --no-create-home --shell /usr/sbin/nologin rollback
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["rollback"]
CMD ["controller", "run", "--listen=0.0.0.0:8080"]
