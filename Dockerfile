# tf-paint trainer image: `python -m model` as the entrypoint, nothing but model/ copied in.
#   CPU (default): docker build -t tf-paint:cpu .
#   GPU:           docker build --build-arg VARIANT=gpu -t tf-paint:gpu .
# Behind a proxy that re-signs TLS, give pip your CA bundle as the optional build secret pip-ca:
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt -t tf-paint:cpu .
#   (buildah bud and podman build take the same --secret flag.)
# The GPU variant takes CUDA and cuDNN from TensorFlow's own pip extra, so both variants share
# one small Python base image; the host needs an NVIDIA driver and the container toolkit.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG VARIANT=cpu
ARG TENSORFLOW_VERSION=2.21.0
ARG PILLOW_VERSION=13.0.0
# tf.summary.scalar/image live in the tensorboard package, which tensorflow-cpu does not pull in.
ARG TENSORBOARD_VERSION=2.21.0

LABEL org.opencontainers.image.title="tf-paint" \
      org.opencontainers.image.description="Repaints a picture with an MLP; the trainer sweepctl sweeps" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/opt/tf-paint

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# tensorflow-cpu has x86_64 wheels only; elsewhere the plain tensorflow wheel is the CPU build.
# Versions are pinned through the ARGs above, which hadolint cannot see through (DL3013).
# hadolint ignore=DL3013
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && case "${VARIANT}" in \
      cpu) tensorflow="tensorflow-cpu==${TENSORFLOW_VERSION}"; \
           [ "$(uname -m)" = x86_64 ] || tensorflow="tensorflow==${TENSORFLOW_VERSION}" ;; \
      gpu) tensorflow="tensorflow[and-cuda]==${TENSORFLOW_VERSION}" ;; \
      *) echo "VARIANT must be cpu or gpu, got '${VARIANT}'" >&2; exit 1 ;; \
    esac \
    && pip install --no-cache-dir "${tensorflow}" "Pillow==${PILLOW_VERSION}" "tensorboard==${TENSORBOARD_VERSION}" \
    && useradd --create-home --uid 1000 --user-group paint

COPY model/ /opt/tf-paint/model/

USER 1000:1000
WORKDIR /home/paint
ENTRYPOINT ["python", "-m", "model"]
