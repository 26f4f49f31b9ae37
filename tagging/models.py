"""Tag vocabulary and product tag suggestions live here (auto-tagging issue)."""
