
¬too old