"""Every state change goes through a function here; each public function is one transaction."""
