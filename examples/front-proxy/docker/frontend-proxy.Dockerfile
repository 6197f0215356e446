# frontend-proxy: the static legate binary and the front proxy's Envoy v3 config, FROM scratch.
# The TLS certificate and key of the 8443 listener are mounted at /etc/legate/tls (tls.crt, tls.key).
# Build context: the staging directory that verify.sh fills (bin/legate, envoy.yaml).
FROM scratch
COPY bin/legate /usr/local/bin/legate
COPY envoy.yaml /etc/legate/envoy.yaml
EXPOSE 8080 8443 9901
ENTRYPOINT ["/usr/local/bin/legate"]
CMD ["-c", "/etc/legate/envoy.yaml"]
