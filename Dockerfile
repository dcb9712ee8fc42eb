# inferwatch: gateway, worker and CLI in one image.
#   docker build -t inferwatch .                          (CPU torch)
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 -t inferwatch:cuda .
# Gateway: `serve --config ...`; GPU worker: `worker --model /models/... --device cuda` (deploy/k8s).
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 inferwatch
WORKDIR /app
RUN pip install --index-url "$TORCH_INDEX" torch
COPY pyproject.toml README.md ./
COPY inferwatch ./inferwatch
COPY inference ./inference
COPY gateway ./gateway
COPY ledger ./ledger
COPY safety ./safety
COPY slo ./slo
COPY canary ./canary
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY reports ./reports
COPY console ./console
RUN pip install . && mkdir -p /var/lib/inferwatch && chown inferwatch /var/lib/inferwatch
USER inferwatch
WORKDIR /var/lib/inferwatch
EXPOSE 8000 8001
ENTRYPOINT ["inferwatch"]
CMD ["serve", "--host", "0.0.0.0"]
