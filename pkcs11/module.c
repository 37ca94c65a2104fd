/* SPDX-License-Identifier: MIT */
/*
 * Loading the PKCS#11 module through p11-kit: by absolute path (checked first) or by
 * p11-kit module name.
 */
#include "pkcs11/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>

/* ---- Modules ---- */

/* A module path must be absolute, exist, be a regular file, and be writable only by root or
 * us: whoever can replace it runs code in this process and sees the PIN. */
static int check_module_path(const char *path, struct itl_error *err)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return err_set(err, ITL_E_MODULE, "PKCS#11 module %s: %s", path,
                       errno == ENOENT ? "no such file (is the package installed?)"
                                       : strerror(errno));
    if (!S_ISREG(st.st_mode))
        return err_set(err, ITL_E_MODULE,
                       "PKCS#11 module %s is not a regular file: give the path of the .so", path);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return err_set(err, ITL_E_MODULE,
                       "PKCS#11 module %s is writable by group or others (mode %04o): refusing "
                       "to load code others can change",
                       path, (unsigned)(st.st_mode & 07777));
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return err_set(err, ITL_E_MODULE,
                       "PKCS#11 module %s belongs to uid %u, neither root nor us: refusing to "
                       "load it",
                       path, (unsigned)st.st_uid);
    return 0;
}

static int load_by_path(struct tok *t, const char *path, struct itl_error *err)
{
    CK_RV rv;

    if (check_module_path(path, err) != 0)
        return -1;
    /* Managed: p11-kit shares C_Initialize/C_Finalize with other users in this process. */
    t->mod = p11_kit_module_load(path, 0);
    if (!t->mod)
        return err_set(err, ITL_E_MODULE,
                       "p11-kit could not load the PKCS#11 module %s (not a PKCS#11 module, or "
                       "missing libraries: P11_KIT_DEBUG=lib shows why)",
                       path);
    rv = p11_kit_module_initialize(t->mod);
    if (rv != CKR_OK) {
        char what[600];
        p11_kit_module_release(t->mod);
        t->mod = NULL;
        snprintf(what, sizeof what, "initialising the PKCS#11 module %s (C_Initialize)", path);
        tok_ckr_err(err, rv, what);
        err->cls = ITL_E_MODULE;
        return -1;
    }
    return 0;
}

static void append_module_names(CK_FUNCTION_LIST **mods, char *out, size_t size)
{
    size_t used = strlen(out);

    for (size_t i = 0; mods && mods[i]; i++) {
        char *name = p11_kit_module_get_name(mods[i]);
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "", name ? name : "?");
        free(name);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
}

/* A p11-kit module name ("softhsm2", as `p11-kit list-modules` shows it): its configured file. */
static int load_by_name(struct tok *t, const char *name, struct itl_error *err)
{
    CK_FUNCTION_LIST **mods = p11_kit_modules_load(NULL, 0);
    CK_FUNCTION_LIST *m;
    char *file;
    int rc;

    if (!mods)
        return err_set(err, ITL_E_MODULE, "p11-kit could not read its module configuration");
    m = p11_kit_module_for_name(mods, name);
    if (!m) {
        char names[400] = "";
        append_module_names(mods, names, sizeof names);
        p11_kit_modules_release(mods);
        return err_set(err, ITL_E_MODULE,
                       "no p11-kit module named '%s' (registered: %s); give --module as a "
                       "name from `p11-kit list-modules` or an absolute path",
                       name, names[0] ? names : "none");
    }
    file = p11_kit_module_get_filename(m);
    p11_kit_modules_release(mods);
    if (!file)
        return err_set(err, ITL_E_MODULE, "p11-kit module '%s' has no file name", name);
    rc = load_by_path(t, file, err);
    free(file);
    return rc;
}

int tok_load_modules(struct tok *t, struct itl_error *err)
{
    const char *m = t->opts.module;

    if (!m) {
        t->modules = p11_kit_modules_load_and_initialize(0);
        if (!t->modules)
            return err_set(err, ITL_E_MODULE,
                           "p11-kit could not load the registered modules "
                           "(`p11-kit list-modules` shows them)");
        t->module_name = strdup("the p11-kit proxy (all registered modules)");
        return 0;
    }
    t->module_name = strdup(m);
    if (m[0] == '/')
        return load_by_path(t, m, err);
    if (strchr(m, '/'))
        return err_set(err, ITL_E_USAGE,
                       "--module %s: give an absolute path or a p11-kit module name", m);
    return load_by_name(t, m, err);
}
