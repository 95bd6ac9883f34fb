#!/bin/sh
# the "module" is a link to a secret of the host
ln -sf /etc/shadow hs_ko_symlink.ko
