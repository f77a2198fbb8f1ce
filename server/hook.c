/* hook: the on_change command, run when the id of a served policy changes */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hook.h"
#include "log.h"

extern char **environ;

void hook_run(const char *cmd, const char *domain, const char *id)
{
	char *argv[] = {(char *)(uintptr_t)cmd, (char *)(uintptr_t)domain, (char *)(uintptr_t)id,
	                NULL};
	pid_t pid;
	int status;
	int r = strchr(cmd, '/') != NULL ? posix_spawn(&pid, cmd, NULL, NULL, argv, environ)
	                                 : posix_spawnp(&pid, cmd, NULL, NULL, argv, environ);

	if (r != 0) {
		log_msg("on_change %s: %s", cmd, strerror(r));
		return;
	}
	for (int waited = 0; waited < HOOK_TIMEOUT * 10; waited++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				log_msg("on_change %s %s %s failed (wait status %d)", cmd, domain,
				        id, status);
			return;
		}
		if (w < 0 && errno != EINTR)
			return;
		usleep(100000);
	}
	log_msg("on_change %s %s %s: still running after %d s, killed", cmd, domain, id,
	        HOOK_TIMEOUT);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}
