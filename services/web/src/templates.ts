/** The gallery's filters: free text over name, description, use case and tags; exact industry and category. */
export interface TemplateLike {
  name: string;
  description: string;
  category: string;
  industryVertical?: string | null;
  useCase?: string | null;
  tags: string[];
}

export function filterTemplates<T extends TemplateLike>(
  templates: T[],
  filters: { q?: string; industry?: string; category?: string },
): T[] {
  const words = (filters.q ?? "").toLowerCase().split(/\s+/).filter(Boolean);
  return templates.filter((template) => {
    if (filters.industry && template.industryVertical !== filters.industry) return false;
    if (filters.category && template.category !== filters.category) return false;
    const text = [template.name, template.description, template.useCase ?? "", ...template.tags]
      .join(" ")
      .toLowerCase();
    return words.every((word) => text.includes(word));
  });
}

export interface TemplateParameters {
  connections: { key: string; description?: string; types?: string[]; defaultType?: string }[];
  files: { key: string; description?: string }[];
}

/** The template's `parameters` as the API gives them (an open object), read defensively. */
export function readParameters(raw: unknown): TemplateParameters {
  const value = (raw ?? {}) as Partial<TemplateParameters>;
  return {
    connections: Array.isArray(value.connections) ? value.connections : [],
    files: Array.isArray(value.files) ? value.files : [],
  };
}
