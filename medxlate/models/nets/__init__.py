"""Network building blocks shared by several model families (torch)."""
