import styles from './Page.module.css';

/** Class names of the page frame: `page`, `header`, `title`, `intro`, `back`, `sectionTitle`, `actions`. */
export const pageStyles = styles;
