# Greenshift: one image for every component (api, worker, dataplane, metrics).
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY greenshift ./greenshift
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY examples ./examples
RUN pip install --no-cache-dir .

ENV GREENSHIFT_HOME=/var/lib/greenshift
VOLUME ["/var/lib/greenshift"]
ENTRYPOINT ["greenshift"]
CMD ["--help"]
