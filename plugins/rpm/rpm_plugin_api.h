/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef KMODSYNC_RPM_PLUGIN_API_H
#define KMODSYNC_RPM_PLUGIN_API_H

/* librpm's transaction plugin interface. rpm 4.18 (Debian 12) does not install
 * rpmplugin.h (public only from rpm 4.20); the hook table's layout has been the same
 * since rpm 4.14, so it is declared here. Hooks return rpmRC (rpm's rpmPluginRC). */

#include <rpm/rpmfi.h>
#include <rpm/rpmtypes.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rpmPluginHooks_s {
    rpmRC (*init)(rpmPlugin plugin, rpmts ts);
    void (*cleanup)(rpmPlugin plugin);
    rpmRC (*tsm_pre)(rpmPlugin plugin, rpmts ts);
    rpmRC (*tsm_post)(rpmPlugin plugin, rpmts ts, int res);
    rpmRC (*psm_pre)(rpmPlugin plugin, rpmte te);
    rpmRC (*psm_post)(rpmPlugin plugin, rpmte te, int res);
    rpmRC (*scriptlet_pre)(rpmPlugin plugin, const char* s_name, int type);
    rpmRC (*scriptlet_fork_post)(rpmPlugin plugin, const char* path, int type);
    rpmRC (*scriptlet_post)(rpmPlugin plugin, const char* s_name, int type, int res);
    rpmRC (*fsm_file_pre)(rpmPlugin plugin, rpmfi fi, const char* path, mode_t file_mode, rpmFlags op);
    rpmRC (*fsm_file_post)(rpmPlugin plugin, rpmfi fi, const char* path, mode_t file_mode, rpmFlags op, int res);
    rpmRC (*fsm_file_prepare)(rpmPlugin plugin, rpmfi fi, int fd, const char* path, const char* dest,
                              mode_t file_mode, rpmFlags op);
};

const char* rpmPluginOpts(rpmPlugin plugin);
void rpmPluginSetData(rpmPlugin plugin, void* data);
void* rpmPluginGetData(rpmPlugin plugin);

#ifdef __cplusplus
}
#endif

#endif
