# rating-service: the static (crt-static, pure-Rust DNS) binary alone, FROM scratch.
# Build context: the staging directory that verify.sh fills (bin/rating-service).
FROM scratch
COPY bin/rating-service /usr/local/bin/rating-service
ENV PORT=6000
EXPOSE 6000
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/rating-service"]
