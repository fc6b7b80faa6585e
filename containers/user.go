package containers

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// resolveUser turns "uid[:gid]" or "name[:group]" into a process user,
// reading names from the container's /etc/passwd and /etc/group under root.
func resolveUser(root, spec string) (specs.User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	var out specs.User
	if uid, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		out.UID = uint32(uid)
		if u, err := lookupPasswd(root, func(u user.User) bool { return u.Uid == int(uid) }); err == nil {
			out.GID = uint32(u.Gid)
		}
	} else {
		u, err := lookupPasswd(root, func(u user.User) bool { return u.Name == userPart })
		if err != nil {
			return out, fmt.Errorf("user %q: %w", userPart, err)
		}
		out.UID, out.GID = uint32(u.Uid), uint32(u.Gid)
	}
	if !hasGroup {
		return out, nil
	}
	if gid, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
		out.GID = uint32(gid)
		return out, nil
	}
	groups, err := user.ParseGroupFileFilter(filepath.Join(root, "etc/group"), func(g user.Group) bool { return g.Name == groupPart })
	if err != nil || len(groups) == 0 {
		return out, fmt.Errorf("group %q not found in the container's /etc/group: %w", groupPart, errdefs.ErrNotFound)
	}
	out.GID = uint32(groups[0].Gid)
	return out, nil
}

func lookupPasswd(root string, match func(user.User) bool) (user.User, error) {
	users, err := user.ParsePasswdFileFilter(filepath.Join(root, "etc/passwd"), match)
	if err != nil || len(users) == 0 {
		return user.User{}, fmt.Errorf("not found in the container's /etc/passwd: %w", errdefs.ErrNotFound)
	}
	return users[0], nil
}
