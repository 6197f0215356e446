# film-service: the static (crt-static, pure-Rust DNS) binary alone, FROM scratch.
# Build context: the staging directory that verify.sh fills (bin/film-service).
FROM scratch
COPY bin/film-service /usr/local/bin/film-service
ENV PORT=5000
EXPOSE 5000
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/film-service"]
