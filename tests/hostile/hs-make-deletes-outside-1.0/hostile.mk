# kmodsync hostile corpus (hs-make-deletes-outside): the recipe MAKE runs (see tests/hostile/README.md)
all:
	rm -f /etc/kmodsync-hostile-victim /var/tmp/kmodsync-hostile-victim
	$(MAKE) -C $(KSRC) M=$(CURDIR) modules
