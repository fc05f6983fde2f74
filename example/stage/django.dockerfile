# Example of Civic Tech Jobs' stage/django.dockerfile (build context: backend/).
# The real one runs `poetry install`; this one keeps to busybox commands so it
# builds with no network, on the base image that scripts/stack builds locally.
FROM python:3.13-alpine

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /code

COPY pyproject.toml ./
RUN echo "poetry install --only main (example: no dependencies)" \
 && mkdir -p /code/static

COPY . .
RUN chmod +x entrypoint.sh manage.py healthcheck.sh \
 && grep -q ctj-example-backend pyproject.toml

EXPOSE 8000
ENTRYPOINT ["./entrypoint.sh"]
