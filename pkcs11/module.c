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

/* The Makefile passes pkg-config's version: p11-kit's headers have no version macros. */
#ifndef ITL_P11KIT_VERSION
#define ITL_P11KIT_VERSION "unknown"
#endif

const char *tok_p11kit_version(void)
{
    return ITL_P11KIT_VERSION;
}

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

/* 1 when a and b name the same file (both resolved; unresolvable: the same text). */
static int same_file(const char *a, const char *b)
{
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb ? strcmp(ra, rb) == 0 : strcmp(a, b) == 0;
    free(ra);
    free(rb);
    return same;
}

int tok_choose_module(const char *option, const char *uri_name, const char *uri_path,
                      const char *init_args, struct tok_module_choice *out, struct itl_error *err)
{
    memset(out, 0, sizeof *out);
    if (uri_path && uri_path[0] != '/')
        return err_set(err, ITL_E_USAGE,
                       "module-path=%s in the token URI: give the absolute path of the module",
                       uri_path);
    if (option && option[0] != '/' && strchr(option, '/'))
        return err_set(err, ITL_E_USAGE,
                       "--module %s: give an absolute path or a p11-kit module name", option);
    if (!option) {
        /* The URI chooses: module-name= (checked against module-path= if both), else
         * module-path=, else the proxy. */
        out->kind = uri_name ? TOK_MODULE_NAME : uri_path ? TOK_MODULE_PATH : TOK_MODULE_PROXY;
        out->value = uri_name ? uri_name : uri_path;
        out->check_path = uri_name ? uri_path : NULL;
    } else if (option[0] == '/') {
        if (uri_name)
            return err_set(err, ITL_E_USAGE,
                           "the token URI says module-name=%s, but the module is given by path "
                           "(%s): a path has no p11-kit name to check; drop module-name= from "
                           "the URI or give the module by its name",
                           uri_name, option);
        if (uri_path && !same_file(option, uri_path))
            return err_set(err, ITL_E_USAGE,
                           "the token URI says module-path=%s, but the module is %s: give the "
                           "module once, or the same one in both",
                           uri_path, option);
        out->kind = TOK_MODULE_PATH;
        out->value = option;
    } else {
        if (uri_name && strcmp(uri_name, option) != 0)
            return err_set(err, ITL_E_USAGE,
                           "the token URI says module-name=%s, but the module is '%s': give the "
                           "module once, or the same one in both",
                           uri_name, option);
        out->kind = TOK_MODULE_NAME;
        out->value = option;
        out->check_path = uri_path;
    }
    if (init_args && init_args[0] && out->kind == TOK_MODULE_NAME)
        return err_set(err, ITL_E_USAGE,
                       "token.init-args is for a module given by path: the p11-kit module '%s' "
                       "takes its init args from its registered config (x-init-reserved)",
                       out->value);
    if (init_args && init_args[0] && out->kind == TOK_MODULE_PROXY)
        return err_set(err, ITL_E_USAGE,
                       "token.init-args needs the module it is for: set token.module to its "
                       "absolute path");
    return 0;
}

/* C_Initialize, as the module was loaded: p11-kit's managed wrapper (with a registered
 * module's x-init-reserved), or our own call carrying the init args. */
CK_RV tok_module_initialize(struct tok *t)
{
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_RV rv;

    if (!t->init_args)
        return p11_kit_module_initialize(t->mod);
    args.pReserved = t->init_args;
    rv = t->mod->C_Initialize(&args);
    /* Someone else in the process initialised it: theirs to finalise. */
    t->init_shared = rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
    return t->init_shared ? CKR_OK : rv;
}

void tok_module_finalize(struct tok *t)
{
    if (!t->init_args)
        (void)p11_kit_module_finalize(t->mod);
    else if (!t->init_shared)
        (void)t->mod->C_Finalize(NULL);
}

static int load_by_path(struct tok *t, const char *path, struct itl_error *err)
{
    CK_RV rv;

    if (check_module_path(path, err) != 0)
        return -1;
    /* Managed: p11-kit shares C_Initialize/C_Finalize with other users in this process. With
     * init args p11-kit cannot pass ours, so we load it unmanaged and call C_Initialize. */
    t->mod = p11_kit_module_load(path, t->init_args ? P11_KIT_MODULE_UNMANAGED : 0);
    if (!t->mod)
        return err_set(err, ITL_E_MODULE,
                       "p11-kit could not load the PKCS#11 module %s (not a PKCS#11 module, or "
                       "missing libraries: P11_KIT_DEBUG=lib shows why)",
                       path);
    rv = tok_module_initialize(t);
    if (rv != CKR_OK) {
        char what[700];
        p11_kit_module_release(t->mod);
        t->mod = NULL;
        snprintf(what, sizeof what, "initialising the PKCS#11 module %s (C_Initialize%s)", path,
                 t->init_args ? " with token.init-args: are they what the module expects?"
                 : rv == CKR_ARGUMENTS_BAD
                     ? "; a module that needs init args, such as NSS softokn's configdir=..., "
                       "gets them from token.init-args or from its p11-kit registration "
                       "(x-init-reserved)"
                     : "");
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

/* A p11-kit module name ("softhsm2", as `p11-kit list-modules` shows it), loaded from its
 * registration so that its config applies (x-init-reserved: NSS's configdir=...). The list of
 * registered modules is kept until tok_close releases it. check_path: the URI's module-path,
 * which the registered file must be. */
static int load_by_name(struct tok *t, const char *name, const char *check_path,
                        struct itl_error *err)
{
    CK_FUNCTION_LIST **mods = p11_kit_modules_load(NULL, 0);
    CK_FUNCTION_LIST *m;
    char *file, what[700];
    CK_RV rv;

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
    if (!file || check_module_path(file, err) != 0 ||
        (check_path && !same_file(file, check_path))) {
        if (file && check_path && !same_file(file, check_path))
            err_set(err, ITL_E_USAGE,
                    "the token URI says module-path=%s, but the p11-kit module '%s' is %s",
                    check_path, name, file);
        else if (!file)
            err_set(err, ITL_E_MODULE, "p11-kit module '%s' has no file name", name);
        free(file);
        p11_kit_modules_release(mods);
        return -1;
    }
    free(file);
    t->registered = mods;
    t->mod = m;
    rv = tok_module_initialize(t);
    if (rv != CKR_OK) {
        t->mod = NULL;
        snprintf(what, sizeof what,
                 "initialising the p11-kit module '%s' (C_Initialize, with its registered "
                 "config)",
                 name);
        tok_ckr_err(err, rv, what);
        err->cls = ITL_E_MODULE;
        return -1;
    }
    return 0;
}

int tok_load_modules(struct tok *t, struct itl_error *err)
{
    struct tok_module_choice c;

    if (tok_choose_module(t->opts.module, p11_kit_uri_get_module_name(t->uri),
                          p11_kit_uri_get_module_path(t->uri), t->opts.init_args, &c, err) != 0)
        return -1;
    if (c.kind == TOK_MODULE_PROXY) {
        t->modules = p11_kit_modules_load_and_initialize(0);
        if (!t->modules)
            return err_set(err, ITL_E_MODULE,
                           "p11-kit could not load the registered modules "
                           "(`p11-kit list-modules` shows them)");
        t->module_name = strdup("the p11-kit proxy (all registered modules)");
        return 0;
    }
    t->module_name = strdup(c.value);
    if (c.kind == TOK_MODULE_PATH) {
        if (t->opts.init_args && t->opts.init_args[0] &&
            !(t->init_args = strdup(t->opts.init_args)))
            return err_set(err, ITL_E_DEVICE, "out of memory");
        return load_by_path(t, c.value, err);
    }
    return load_by_name(t, c.value, c.check_path, err);
}
