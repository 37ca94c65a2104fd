/* SPDX-License-Identifier: MIT */
/* tools: the fleet's ITLs and one phone's verdict on a new ITL (fleet.h, docs/fleet.md). */
#include "tools/fleet.h"

#include "tools/cli.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* `what` names the bytes in messages (the path read, or the name given). */
static int adopt(uint8_t *data, size_t len, const char *name, const char *what, struct fleet_itl *h,
                 struct itl_error *err)
{
    memset(h, 0, sizeof *h);
    text_printf(h->name, sizeof h->name, "%s", name);
    if (itl_parse(data, len, ITL_KIND_AUTO, &h->f, err) != 0) {
        free(data);
        return err_prefix(err, "%s: not an ITL/CTL: ", what);
    }
    h->data = data;
    h->len = len;
    if (h->f.kind != ITL_KIND_TLV) {
        fleet_itl_free(h);
        return err_set(err, ITL_E_INPUT, "%s: a %s, not an ITL/CTL (.tlv)", what,
                       itl_kind_name(h->f.kind));
    }
    EVP_Digest(h->data, h->len, h->sha1, NULL, EVP_sha1(), NULL);
    return 0;
}

int fleet_itl_adopt(uint8_t *data, size_t len, const char *name, struct fleet_itl *h,
                    struct itl_error *err)
{
    return adopt(data, len, name, name, h, err);
}

int fleet_itl_load(const char *path, const char *name, struct fleet_itl *h, struct itl_error *err)
{
    uint8_t *data;
    size_t len;

    memset(h, 0, sizeof *h);
    if (file_read(path, FILE_NOFOLLOW, FLEET_FILE_LIMIT, &data, &len, err) != 0)
        return -1;
    return adopt(data, len, name, path, h, err);
}

void fleet_itl_free(struct fleet_itl *h)
{
    if (h->data)
        itl_file_free(&h->f);
    free(h->data);
    free(h->assumed_signer);
    h->data = h->assumed_signer = NULL;
}

static int by_sha1(const void *a, const void *b)
{
    return memcmp(((const struct fleet_itl *)a)->sha1, ((const struct fleet_itl *)b)->sha1,
                  ITL_SHA1_LEN);
}

static int grow(struct fleet_history *h, struct itl_error *err)
{
    struct fleet_itl *v = realloc(h->v, (h->n + 1) * sizeof *v);

    if (!v)
        return err_set(err, ITL_E_INTERNAL, "out of memory reading the history");
    h->v = v;
    return 0;
}

int fleet_history_load(struct fleet_history *h, const char *dir, const char *cmd,
                       struct itl_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return err_errno(err, errno, "cannot open history directory %s", dir);
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        struct itl_error e = {0};

        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            cli_warn("%s: %s: not a regular file, skipped", cmd, path);
            continue;
        }
        if (grow(h, err) != 0) {
            closedir(d);
            return -1;
        }
        if (fleet_itl_load(path, de->d_name, &h->v[h->n], &e) == 0)
            h->n++;
        else
            cli_warn("%s: %s, skipped", cmd, e.msg);
        errno = 0;
    }
    if (errno != 0) {
        int saved = errno;
        closedir(d);
        return err_errno(err, saved, "cannot read history directory %s", dir);
    }
    closedir(d);
    if (h->n > 1)
        qsort(h->v, h->n, sizeof h->v[0], by_sha1);
    return 0;
}

int fleet_history_add(struct fleet_history *h, struct fleet_itl *itl, struct itl_error *err)
{
    if (fleet_history_find(h, itl->sha1)) {
        fleet_itl_free(itl);
        return 0;
    }
    if (grow(h, err) != 0)
        return -1;
    h->v[h->n++] = *itl;
    memset(itl, 0, sizeof *itl);
    if (h->n > 1)
        qsort(h->v, h->n, sizeof h->v[0], by_sha1);
    return 0;
}

const struct fleet_itl *fleet_history_find(const struct fleet_history *h,
                                           const uint8_t sha1[ITL_SHA1_LEN])
{
    struct fleet_itl key;

    if (!h->n)
        return NULL;
    memcpy(key.sha1, sha1, ITL_SHA1_LEN);
    return bsearch(&key, h->v, h->n, sizeof h->v[0], by_sha1);
}

void fleet_history_free(struct fleet_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        fleet_itl_free(&h->v[i]);
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

/* ---- TVS ---- */

static int is_role(const struct itl_record *r, unsigned role)
{
    return r->has_function && r->function == role;
}

static int tvs_add(struct fleet_tvs *t, const uint8_t *der, size_t len, const char *what,
                   struct itl_error *err)
{
    if (t->n == FLEET_MAX_TVS)
        return err_set(err, ITL_E_USAGE, "at most %d TVS certificates (%s)", FLEET_MAX_TVS, what);
    t->cert[t->n] = malloc(len ? len : 1);
    if (!t->cert[t->n])
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    memcpy(t->cert[t->n], der, len);
    t->cert_len[t->n++] = len;
    return 0;
}

int fleet_tvs_add_file(struct fleet_tvs *t, const char *path, struct itl_error *err)
{
    uint8_t *der;
    size_t len;
    int rc;

    if (cli_read_cert(path, &der, &len, err) != 0)
        return err_prefix(err, "--tvs-cert: ");
    rc = tvs_add(t, der, len, path, err);
    free(der);
    return rc;
}

int fleet_tvs_set_trusts(struct fleet_tvs *t, const struct itl_file *new_itl, struct itl_error *err)
{
    free(t->trusts);
    t->n_trusts = 0;
    t->trusts = calloc(new_itl->n_records + 1, sizeof *t->trusts);
    if (!t->trusts)
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < new_itl->n_records; i++) {
        const struct itl_record *r = &new_itl->records[i];
        if (!r->certificate.ptr)
            continue;
        t->trusts[t->n_trusts].cert_der = r->certificate.ptr;
        t->trusts[t->n_trusts].cert_len = r->certificate.len;
        t->trusts[t->n_trusts++].function = r->function;
    }
    /* Without --tvs-cert: the TVS certificates the new ITL lists are the ones TVS presents
     * (CUCM builds the ITL from TVS.pem of each server). */
    if (t->n != 0)
        return 0;
    t->from_itl = 1;
    for (size_t i = 0; i < new_itl->n_records; i++) {
        const struct itl_record *r = &new_itl->records[i];
        if (is_role(r, ITL_ROLE_TVS) && r->certificate.ptr &&
            tvs_add(t, r->certificate.ptr, r->certificate.len, "the new ITL's TVS records", err) !=
                0)
            return -1;
    }
    return 0;
}

void fleet_tvs_free(struct fleet_tvs *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->cert[i]);
    free(t->trusts);
    memset(t, 0, sizeof *t);
}

/* ---- one phone ---- */

/* A record of `list` other than its signer with this role holds a certificate `other` has as
 * SAST. `*any` says whether `list` has such a record at all. */
static int recovery_in(const struct itl_file *list, const struct itl_file *other, int *any)
{
    long signer = itl_find_signer_record(list);

    *any = 0;
    for (size_t i = 0; i < list->n_records; i++) {
        const struct itl_record *r = &list->records[i];
        if (!is_role(r, ITL_ROLE_SAST) || (long)i == signer || !r->certificate.ptr)
            continue;
        *any = 1;
        if (itl_has_cert_with_role(other, r->certificate.ptr, r->certificate.len, ITL_ROLE_SAST))
            return 1;
    }
    return 0;
}

int fleet_has_recovery_sast(const struct itl_file *new_itl, const struct itl_file *held)
{
    long signer = itl_find_signer_record(new_itl);
    int any;

    if (recovery_in(new_itl, held, &any))
        return 1;
    if (!any && signer >= 0 && new_itl->records[signer].certificate.ptr) {
        const struct itl_record *r = &new_itl->records[signer];
        return itl_has_cert_with_role(held, r->certificate.ptr, r->certificate.len, ITL_ROLE_SAST);
    }
    return 0;
}

static void add_reason(struct fleet_verdict *v, const char *text)
{
    if (v->n_reasons < FLEET_MAX_REASONS)
        text_printf(v->reasons[v->n_reasons++], sizeof v->reasons[0], "%s", text);
}

/* The held ITL has a TVS record, and one holds a certificate TVS presents. */
static int tvs_still_trusted(const struct itl_file *held, const struct fleet_tvs *tvs,
                             int *held_has_tvs)
{
    struct itl_match m;

    *held_has_tvs = 0;
    for (size_t i = 0; i < held->n_records; i++)
        *held_has_tvs |= is_role(&held->records[i], ITL_ROLE_TVS);
    for (size_t i = 0; tvs && i < tvs->n; i++)
        if (itl_find_cert_record(held, 0, ITL_ROLE_MASK(ITL_ROLE_TVS), tvs->cert[i],
                                 tvs->cert_len[i], &m) >= 0)
            return 1;
    return 0;
}

/* The phone model's options for the new ITL: its assumed signer (plan --build), and the TVS
 * server `tvs_index` (-1: none). */
static struct itl_trust_opts new_itl_opts(const struct fleet_itl *new_itl,
                                          const struct fleet_tvs *tvs, long tvs_index)
{
    struct itl_trust_opts o = {.assume_signer = new_itl->assumed_signer,
                               .assume_signer_len = new_itl->assumed_signer_len};

    if (tvs && tvs_index >= 0 && (size_t)tvs_index < tvs->n) {
        o.tvs_cert = tvs->cert[tvs_index];
        o.tvs_cert_len = tvs->cert_len[tvs_index];
        o.tvs_trusts = tvs->trusts;
        o.n_tvs_trusts = tvs->n_trusts;
    }
    return o;
}

static enum itl_trust_path try_tvs(const struct itl_file *held, const struct fleet_itl *new_itl,
                                   const struct fleet_tvs *tvs, struct itl_trust_verdict *tv)
{
    for (size_t i = 0; tvs && i < tvs->n; i++) {
        struct itl_trust_opts o = new_itl_opts(new_itl, tvs, (long)i);
        if (itl_trust_decide(held, &new_itl->f, &o, tv) == ITL_TRUST_TVS)
            return ITL_TRUST_TVS;
    }
    return ITL_TRUST_NONE;
}

static void name_mistakes(const struct itl_file *held, const struct itl_file *new_itl,
                          const struct fleet_tvs *tvs, struct fleet_verdict *v)
{
    struct itl_match m;
    int held_has_tvs, any_recovery;
    int signer_known = itl_find_record(held, 0, ITL_ROLES_ANY, new_itl->hdr.signer_serial,
                                       new_itl->hdr.signer_issuer, &m) >= 0;
    int tvs_ok = tvs_still_trusted(held, tvs, &held_has_tvs);

    if (v->action == FLEET_REJECT && !signer_known) {
        if (held_has_tvs && !tvs_ok && tvs && tvs->n)
            v->mistakes |= FLEET_M_CCM_AND_TVS;
        else
            v->mistakes |= FLEET_M_UNKNOWN_SIGNER;
    }
    recovery_in(held, held, &any_recovery);
    if (!any_recovery)
        return; /* the held ITL has no recovery SAST of its own: nothing to differ from */
    if (!v->has_recovery)
        v->mistakes |= FLEET_M_RECOVERY_CHANGED;
}

void fleet_decide(const struct itl_file *held, const struct fleet_itl *nf,
                  const struct fleet_tvs *tvs, struct fleet_verdict *v)
{
    const struct itl_file *new_itl = &nf->f;
    struct itl_trust_opts direct = new_itl_opts(nf, NULL, -1), first_tvs = new_itl_opts(nf, tvs, 0);
    struct itl_trust_verdict tv;
    enum itl_trust_path p;

    memset(v, 0, sizeof *v);
    p = itl_trust_decide(held, new_itl, &direct, &tv);
    if (p == ITL_TRUST_NONE)
        p = try_tvs(held, nf, tvs, &tv) == ITL_TRUST_TVS ? ITL_TRUST_TVS : ITL_TRUST_NONE;
    if (p == ITL_TRUST_NONE && tvs && tvs->n)
        itl_trust_decide(held, new_itl, &first_tvs, &tv); /* the reason, with the TVS part */
    v->action = p == ITL_TRUST_DIRECT ? FLEET_ACCEPT
                : p == ITL_TRUST_TVS  ? FLEET_ACCEPT_TVS
                                      : FLEET_REJECT;
    v->has_recovery = fleet_has_recovery_sast(new_itl, held);
    v->outcome = v->action != FLEET_REJECT ? FLEET_CURRENT
                 : v->has_recovery         ? FLEET_RESCUABLE
                                           : FLEET_STRANDED;
    add_reason(v, tv.why);
    if (v->action == FLEET_REJECT)
        add_reason(v, v->has_recovery ? "its ITL holds the new ITL's recovery SAST: a `reset` ITL "
                                        "signed with the recovery key reaches it"
                                      : "its ITL does not hold the new ITL's recovery SAST: only a "
                                        "manual ITL delete on the phone rescues it");
    name_mistakes(held, new_itl, tvs, v);
    for (unsigned bit = 1; bit < (1u << FLEET_MISTAKES); bit <<= 1)
        if (v->mistakes & bit)
            add_reason(v, fleet_mistake_text(bit));
}

const char *fleet_action_name(enum fleet_action a)
{
    return a == FLEET_ACCEPT ? "accept" : a == FLEET_ACCEPT_TVS ? "accept-via-tvs" : "reject";
}

const char *fleet_outcome_name(enum fleet_outcome o)
{
    static const char *const names[] = {"current", "stranded", "rescuable by reset", "unknown ITL"};
    return names[o];
}

const char *fleet_mistake_id(unsigned bit)
{
    return bit == FLEET_M_CCM_AND_TVS      ? "callmanager-and-tvs-regenerated"
           : bit == FLEET_M_UNKNOWN_SIGNER ? "new-signer-without-sast"
                                           : "recovery-sast-changed";
}

const char *fleet_mistake_text(unsigned bit)
{
    if (bit == FLEET_M_CCM_AND_TVS)
        return "CallManager and TVS regenerated together: the new ITL's signer is unknown to the "
               "phone's ITL and TVS presents a certificate its TVS record does not hold, so there "
               "is no path of trust (seed 001: never regenerate CallManager.pem and TVS.pem at "
               "the same time; regenerate one, let phones take the new ITL, then the other)";
    if (bit == FLEET_M_UNKNOWN_SIGNER)
        return "a new TFTP/CallManager key signs the ITL and no SAST of the phone's ITL signs "
               "for it: publish first an ITL signed by a SAST the phones hold (itl-sign reset "
               "with the recovery key, or the old CallManager key) that lists the new key, then "
               "the ITL the new key signs";
    return "the new ITL's recovery SAST differs from the one the phone's ITL holds: once the "
           "phone takes it, no reset with the recovery key it knew reaches it, and a phone that "
           "does not take it cannot be reset with the new one (seed 000: the ITLRecovery "
           "certificate must not change; keep the old one as SAST while phones move)";
}

/* ---- reports judged ---- */

int fleet_judge_init(struct fleet_judge *j, const struct fleet_history *hist,
                     const struct fleet_itl *new_itl, const struct fleet_tvs *tvs,
                     struct itl_error *err)
{
    memset(j, 0, sizeof *j);
    j->hist = hist;
    j->new_itl = new_itl;
    j->tvs = tvs;
    j->verdicts = calloc(hist->n + 1, sizeof *j->verdicts);
    j->decided = calloc(hist->n + 1, 1);
    j->ctl_decided = calloc(hist->n + 1, 1);
    if (!j->verdicts || !j->decided || !j->ctl_decided) {
        fleet_judge_free(j);
        return err_set(err, ITL_E_INTERNAL, "out of memory");
    }
    return 0;
}

void fleet_judge_free(struct fleet_judge *j)
{
    free(j->verdicts);
    free(j->decided);
    free(j->ctl_decided);
    j->verdicts = NULL;
    j->decided = NULL;
    j->ctl_decided = NULL;
}

static void special_verdict(enum fleet_action a, enum fleet_outcome o, const char *why,
                            struct fleet_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->action = a;
    v->outcome = o;
    add_reason(v, why);
}

/* A phone that also holds a CTL takes a new ITL its CCM+TFTP records verify (docs/trust.md R3),
 * even when its ITL does not vouch for it. The CTL's answer is kept per history file. */
static const struct fleet_verdict *through_ctl(struct fleet_judge *j, const struct itl_report *r,
                                               const struct fleet_verdict *itl_verdict,
                                               struct fleet_verdict *scratch)
{
    const struct fleet_itl *c = fleet_history_find(j->hist, r->ctl_sha1);
    struct itl_trust_verdict tv;
    char why[1200];
    size_t i;

    if (!c || itl_list_of(&c->f) != ITL_LIST_CTL)
        return itl_verdict;
    i = (size_t)(c - j->hist->v);
    if (!j->ctl_decided[i]) {
        struct itl_trust_opts o = new_itl_opts(j->new_itl, NULL, -1);
        j->ctl_decided[i] =
            itl_trust_decide(&c->f, &j->new_itl->f, &o, &tv) == ITL_TRUST_DIRECT ? 1 : 2;
    }
    if (j->ctl_decided[i] != 1)
        return itl_verdict;
    *scratch = *itl_verdict;
    scratch->action = FLEET_ACCEPT;
    scratch->outcome = FLEET_CURRENT;
    scratch->mistakes &= FLEET_M_RECOVERY_CHANGED;
    scratch->n_reasons = 0;
    text_printf(why, sizeof why,
                "its ITL does not vouch for the new one, but its CTL %s does: a CCM+TFTP record "
                "of the CTL signed it (docs/trust.md R3)",
                c->name);
    add_reason(scratch, why);
    if (scratch->mistakes)
        add_reason(scratch, fleet_mistake_text(FLEET_M_RECOVERY_CHANGED));
    return scratch;
}

const struct fleet_verdict *fleet_judge_report(struct fleet_judge *j, const struct itl_report *r,
                                               const struct fleet_itl **held,
                                               struct fleet_verdict *scratch)
{
    const struct fleet_itl *h = r->has_itl ? fleet_history_find(j->hist, r->itl_sha1) : NULL;
    size_t i;

    *held = h;
    if (!r->has_itl) {
        special_verdict(FLEET_ACCEPT, FLEET_CURRENT,
                        "no ITL installed: a phone takes the first ITL it downloads (seed 001)",
                        scratch);
        return scratch;
    }
    if (memcmp(r->itl_sha1, j->new_itl->sha1, ITL_SHA1_LEN) == 0) {
        special_verdict(FLEET_ACCEPT, FLEET_CURRENT, "it already holds the new ITL", scratch);
        return scratch;
    }
    if (!h) {
        special_verdict(FLEET_REJECT, FLEET_UNKNOWN,
                        "its ITL is not in --history: what it trusts is unknown (add the file it "
                        "holds to the history)",
                        scratch);
        return scratch;
    }
    i = (size_t)(h - j->hist->v);
    if (!j->decided[i]) {
        fleet_decide(&h->f, j->new_itl, j->tvs, &j->verdicts[i]);
        j->decided[i] = 1;
    }
    if (j->verdicts[i].action == FLEET_REJECT && r->has_ctl)
        return through_ctl(j, r, &j->verdicts[i], scratch);
    return &j->verdicts[i];
}

/* ---- the fleet inputs ---- */

int fleet_option(struct fleet_args *a, const char *cmd, int opt, const char *arg)
{
    switch (opt) {
    case FLEET_OPT_REPORTS:
        if (a->n_reports == FLEET_MAX_REPORT_FILES) {
            cli_error("%s: at most %d --reports files", cmd, FLEET_MAX_REPORT_FILES);
            return -1;
        }
        a->reports[a->n_reports++] = arg;
        return 1;
    case FLEET_OPT_HISTORY:
        a->history = arg;
        return 1;
    case FLEET_OPT_CURRENT:
        a->current = arg;
        return 1;
    case FLEET_OPT_TVS_CERT:
        if (a->n_tvs == FLEET_MAX_TVS) {
            cli_error("%s: at most %d --tvs-cert files", cmd, FLEET_MAX_TVS);
            return -1;
        }
        a->tvs_cert[a->n_tvs++] = arg;
        return 1;
    }
    return 0;
}

#define FLEET_REPORT_LIMIT (1u << 30)

struct report_warn {
    const char *cmd, *path;
};

static void on_warn(void *ctx, long line, const char *msg)
{
    const struct report_warn *w = ctx;
    cli_warn("%s: %s:%ld: %s", w->cmd, w->path, line, msg);
}

struct report_ctx {
    struct report_warn w;
    itl_report_fn fn;
    void *ctx;
};

static int on_report(void *ctx, const struct itl_report *r)
{
    struct report_ctx *c = ctx;
    return c->fn(c->ctx, r);
}

static void warn_through(void *ctx, long line, const char *msg)
{
    on_warn(&((struct report_ctx *)ctx)->w, line, msg);
}

int fleet_read_reports(const struct fleet_args *a, const char *cmd, itl_report_fn fn, void *ctx,
                       struct itl_error *err)
{
    for (size_t i = 0; i < a->n_reports; i++) {
        struct report_ctx c = {{cmd, a->reports[i]}, fn, ctx};
        struct itl_error e = {0};
        uint8_t *data;
        size_t len;

        if (file_read(a->reports[i], FILE_NOFOLLOW, FLEET_REPORT_LIMIT, &data, &len, err) != 0)
            return -1;
        if (itl_reports_parse((const char *)data, len, on_report, warn_through, &c, &e) < 0)
            cli_warn("%s: %s: %s", cmd, a->reports[i], e.msg);
        free(data);
    }
    return 0;
}

int fleet_tvs_load(struct fleet_tvs *t, const struct fleet_args *a, const struct itl_file *new_itl,
                   struct itl_error *err)
{
    for (size_t i = 0; i < a->n_tvs; i++)
        if (fleet_tvs_add_file(t, a->tvs_cert[i], err) != 0)
            return -1;
    return fleet_tvs_set_trusts(t, new_itl, err);
}
