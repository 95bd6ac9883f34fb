# kmodsync hostile corpus (hs-make-writes-outside): the recipe MAKE runs (see tests/hostile/README.md)
all:
	echo x >/etc/kmodsync-hostile-make-writes-outside
	echo x >/var/tmp/kmodsync-hostile-make-writes-outside
	echo x >$(KSRC)/kmodsync-hostile-make-writes-outside
	$(MAKE) -C $(KSRC) M=$(CURDIR) modules
