# kmodsync hostile corpus (hs-make-background): the recipe MAKE runs (see tests/hostile/README.md)
all:
	bash -c 'exec -a kmodsync-hostile-MARKER-make-background sleep 3600' &
	$(MAKE) -C $(KSRC) M=$(CURDIR) modules
