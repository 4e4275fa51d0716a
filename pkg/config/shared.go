package config

// Shared returns the settings every service shares; a service's configuration, which embeds
// Common, offers it too.
func (c Common) Shared() Common { return c }
