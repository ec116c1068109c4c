# tollgate: the controller image. Multi-stage: build `tollgate` (release), then a minimal
# non-root runtime with a pinned Terraform and the module catalog.
#
#   docker build -t tollgate:0.1.0 .
#   docker build --build-arg TERRAFORM_VERSION=1.15.5 -t tollgate:0.1.0 .
#
# OpenTofu instead of Terraform: build with --build-arg IAC=tofu (OpenTofu's release zip has
# a `tofu` binary; TOLLGATE_TERRAFORM points at it). The runtime runs with a read-only root
# filesystem: HOME, the provider plugin cache, the work dir and /tmp are volumes (the Helm
# chart mounts emptyDirs there).

ARG RUST_VERSION=1.94
ARG TERRAFORM_VERSION=1.15.5
ARG OPENTOFU_VERSION=1.12.6
ARG IAC=terraform
# sha256 of the release zip (from its SHA256SUMS): checked when given; pin it in production.
ARG IAC_SHA256=""

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY controller controller
COPY tests/e2e/Cargo.toml tests/e2e/Cargo.toml
COPY tests/e2e/src tests/e2e/src
RUN cargo build --release --locked -p tollgate --bin tollgate

FROM debian:bookworm-slim AS iac
ARG TERRAFORM_VERSION
ARG OPENTOFU_VERSION
ARG IAC
ARG IAC_SHA256
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl unzip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /iac
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if [ "$IAC" = "tofu" ]; then \
      url="https://github.com/opentofu/opentofu/releases/download/v${OPENTOFU_VERSION}/tofu_${OPENTOFU_VERSION}_linux_amd64.zip"; \
    else \
      url="https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip"; \
    fi \
 && curl -fsSL -o iac.zip "$url" \
 && if [ -n "$IAC_SHA256" ]; then echo "$IAC_SHA256  iac.zip" | sha256sum -c -; fi \
 && unzip iac.zip \
 && install -m 0755 "$IAC" /usr/local/bin/iac

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
COPY --from=iac /usr/local/bin/iac /usr/local/bin/terraform
COPY modules /opt/tollgate/modules
ENV TOLLGATE_TERRAFORM=/usr/local/bin/terraform \
    TOLLGATE_CATALOG=/opt/tollgate/modules \
    TOLLGATE_WORK_DIR=/var/lib/tollgate/work \
    TF_PLUGIN_CACHE_DIR=/var/cache/tollgate/plugins \
    TF_IN_AUTOMATION=1 \
    HOME=/home/tollgate
VOLUME ["/var/lib/tollgate/work", "/var/cache/tollgate/plugins", "/home/tollgate", "/tmp"]
# distroless "nonroot": uid/gid 65532.
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["controller"]
