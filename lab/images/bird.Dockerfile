# BIRD 2 image for the leaf-spine ToRs (Debian's bird2, iproute2 for exec lines).
#   docker build -t tortie-lab/bird:2 -f lab/images/bird.Dockerfile lab/images
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bird2 iproute2 iputils-ping procps \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/bird
CMD ["bird", "-f", "-c", "/etc/bird/bird.conf"]
