#!/bin/sh
# php-fpm daemonizes itself; nginx then becomes PID 1 so `docker stop`'s
# SIGTERM is a fast nginx shutdown. php-fpm is nginx's (reaped) orphan,
# so `pkill php-fpm` leaves nginx up, answering 502.
set -eu
mkdir -p /run/php
php-fpm --daemonize
exec nginx -g 'daemon off;'
