// SPDX-License-Identifier: GPL-2.0
#include <linux/init.h>
#include <linux/module.h>
static int __init hs_init(void) { return 0; }
static void __exit hs_exit(void) { }
module_init(hs_init);
module_exit(hs_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodsync hostile corpus: hs-build-depends-self");
