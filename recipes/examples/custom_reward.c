/* A reward term written in C, called from recipes/examples/custom_reward.lua
 * through egrc.ffi. Build it once:
 *   cc -shared -fPIC -O2 -o libcustom_reward.so recipes/examples/custom_reward.c */
#include <stddef.h>
#include <string.h>

int count_connectors(const char *text);

/* How many filler connectors ("Wait", "Hmm", "let me", ...) a completion
 * holds: the high-entropy tokens that open a new (often redundant) round of
 * reasoning in the method's analysis (docs/method.md). */
int count_connectors(const char *text) {
    static const char *const connectors[] = {"Wait", "Hmm", "Let me", "let me", "Okay", "Alright"};
    int count = 0;
    for (size_t i = 0; i < sizeof connectors / sizeof connectors[0]; i++)
        for (const char *p = strstr(text, connectors[i]); p; p = strstr(p + 1, connectors[i])) count++;
    return count;
}
