"""Write helpers shared by every app's services (kamen_portal sits under all)."""
