"""license-sync: GitHub Enterprise Server license sync to GitHub Enterprise Cloud."""
