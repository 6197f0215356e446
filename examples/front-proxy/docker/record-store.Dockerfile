# record-store: the static (crt-static, pure-Rust DNS) binary alone, FROM scratch.
# Build context: the staging directory that verify.sh fills (bin/record-store).
FROM scratch
COPY bin/record-store /usr/local/bin/record-store
ENV PORT=7000
EXPOSE 7000
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/record-store"]
