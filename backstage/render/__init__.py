"""Text Backstage generates (vassal configs, settings modules) from plain data;
writing it is a separate step."""
