"""Security building blocks with no routes: passwords, devices, headers."""
