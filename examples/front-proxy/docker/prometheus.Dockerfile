# prometheus: Debian's /usr/bin/prometheus (dynamically linked against glibc only: `ldd` lists
# libc.so.6 and the loader) with those two libraries and its web assets, FROM scratch.
# Build context: the staging directory that verify.sh fills (prometheus/...).
FROM scratch
COPY prometheus/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
COPY prometheus/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6
COPY prometheus/prometheus /bin/prometheus
COPY prometheus/web /usr/share/prometheus/web
COPY prometheus.yaml /etc/prometheus/prometheus.yml
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]
