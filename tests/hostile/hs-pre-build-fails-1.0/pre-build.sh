#!/bin/sh
echo "hs-pre-build-fails: pre-build.sh refuses" >&2
exit 3
