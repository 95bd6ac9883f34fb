# kmodsync hostile corpus (hs-symlink-etc): the recipe MAKE runs (see tests/hostile/README.md)
all:
	-echo x >etc/kmodsync-hostile-symlink-etc
	$(MAKE) -C $(KSRC) M=$(CURDIR) modules
