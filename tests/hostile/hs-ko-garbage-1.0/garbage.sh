#!/bin/sh
echo "this is not an ELF object" >hs_ko_garbage.ko
