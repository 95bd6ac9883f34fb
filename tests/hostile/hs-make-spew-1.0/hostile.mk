# kmodsync hostile corpus (hs-make-spew): the recipe MAKE runs (see tests/hostile/README.md)
all:
	@head -c 30000000 /dev/zero | tr '\0' m
	$(MAKE) -C $(KSRC) M=$(CURDIR) modules
