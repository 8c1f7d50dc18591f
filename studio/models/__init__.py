"""Models the project trains itself (torch is imported only by importing a model module)."""
