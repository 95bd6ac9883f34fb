# kmodsync hostile corpus (hs-make-tmp): the recipe MAKE runs (see tests/hostile/README.md)
all:
	echo x >/tmp/kmodsync-hostile-MARKER-make-tmp
	$(MAKE) -C $(KSRC) M=$(CURDIR) modules
