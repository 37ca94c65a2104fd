/* SPDX-License-Identifier: MIT */
/* Near-miss suggestions for the config's error messages: "(did you mean 'regen-hold'?)". */
#include "policy/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (tolower((unsigned char)a[i - 1]) != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The candidate `word` was most likely meant as: '_' for '-', case, or two typos. */
static const char *suggest(const char *word, const char *const *candidates)
{
    char normal[65];
    const char *best = NULL;
    size_t best_distance = 3, i;

    for (i = 0; word[i] && i < sizeof normal - 1; i++)
        normal[i] = word[i] == '_' ? '-' : (char)tolower((unsigned char)word[i]);
    normal[i] = '\0';
    if (word[i])
        return NULL;
    for (i = 0; candidates[i]; i++) {
        size_t d = edit_distance(normal, candidates[i]);
        if (d < best_distance && d < strlen(candidates[i])) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}

void pol_did_you_mean(const char *word, const char *const *candidates, char *out, size_t size)
{
    const char *s = suggest(word, candidates);
    if (s)
        snprintf(out, size, " (did you mean '%s'?)", s);
    else
        out[0] = '\0';
}

void pol_join_names(const char *const *names, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; names[i]; i++)
        pol_strlcatf(out, size, "%s%s", i ? ", " : "", names[i]);
}
