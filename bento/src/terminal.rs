//! Step 10, pty: the container's own terminal. (Written after the core: see below.)
