#!/bin/bash
# never ends
while :; do sleep 1; done
